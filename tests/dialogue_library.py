"""A small real library for the dialogue tests: demo-library names, two tracks called
"Victory" (for the ambiguity question), features, tags, and MusicBERT vectors.

Each track's vector is the embedder's own text embedding of a description, so a
search for that description finds it first whatever the model's weights are.
"""

from __future__ import annotations

import numpy as np

from catalog.models import AudioFeatures, Embedding, Tag, Track
from catalog.queries import get_or_create_album, get_or_create_artist

WESNOTH = "The Battle for Wesnoth OST"
ENDGAME = "Endgame: Singularity Original Soundtrack"
# title, artist, album, year, seconds, tempo, key, mode, tags, description
TRACKS = [
    ("Battle Music", "Aleksi Aubry-Carlson", WESNOTH, 2006, 318.0, 140.0, "D", "minor",
     [("orchestral", "genre"), ("epic", "mood"), ("drums", "instrument")],
     "epic orchestral battle music with drums"),
    ("Victory", "Timothy Pinkham", WESNOTH, 2005, 5.0, 100.0, "C", "major",
     [("orchestral", "genre"), ("happy", "mood")], "short happy orchestral fanfare"),
    ("Victory", "Ryan Reilly", WESNOTH, 2007, 21.0, 110.0, "G", "major",
     [("orchestral", "genre"), ("happy", "mood")], "triumphant brass victory theme"),
    ("The Knolls of Doldesh", "Timothy Pinkham", WESNOTH, 2006, 410.0, 70.0, "A", "minor",
     [("calm", "mood"), ("strings", "instrument")], "calm slow strings over rolling hills"),
    ("Nebula", "Maxstack", ENDGAME, 2012, 317.0, 120.0, "E", "minor",
     [("electronic", "genre"), ("dark", "mood"), ("synth", "instrument")],
     "dark electronic synth ambience in space"),
    ("Awakening", "Maxstack", ENDGAME, 2012, 208.0, 128.0, "F", "minor",
     [("electronic", "genre"), ("energetic", "mood")], "energetic electronic beat"),
    ("Sad", "Tyler Johnson", WESNOTH, 2010, 44.0, 60.0, "B", "minor",
     [("sad", "mood"), ("piano", "instrument")], "sad slow piano lament"),
]  # fmt: skip


def build_library(catalog, embedder) -> dict[tuple[str, str], int]:
    """Fill ``catalog``; (title, artist) -> track id."""
    vectors = embedder.embed_text([t[-1] for t in TRACKS])
    ids: dict[tuple[str, str], int] = {}
    with catalog.session() as s:
        for n, (title, artist, album, year, secs, tempo, key, mode, tags, _d) in enumerate(TRACKS):
            a = get_or_create_artist(s, artist)
            al = get_or_create_album(s, album, a, year)
            track = Track(
                path=f"/music/{n:02d}.ogg",
                content_hash=f"{n:064x}",
                title=title,
                artist=a,
                album=al,
                duration=secs,
                year=year,
                licence="CC BY-SA",
            )
            track.features = AudioFeatures(tempo=tempo, key=key, mode=mode, loudness_db=-20.0 + n)
            for name, kind in tags:
                track.tags.append(Tag(name=name, kind=kind, origin="file"))
            vec = np.asarray(vectors[n], dtype="<f4")
            track.embeddings.append(
                Embedding(model_id=embedder.model_id, dim=vec.size, vector=vec.tobytes())
            )
            s.add(track)
            s.flush()
            ids[(title, artist)] = track.id
    return ids


_SHARED: dict[str, object] = {}


def shared_models():
    """(embedder, nlu) loaded once per test run: the MiniLM tower and the trained intent
    model are the slow parts. The intent model's cache lives in a temp dir of its own."""
    if "nlu" not in _SHARED:
        import os
        import tempfile
        import warnings

        import pytest

        from assistant.nlu import NLU
        from musicbert.embedder import Embedder

        # A fixed place, so later test runs reuse the trained intent model; the cache key
        # (nlu.yml hash + tower weights) keeps a stale model from ever being used.
        home = os.path.join(tempfile.gettempdir(), f"musicbert_nlu_tests_{os.getuid()}")
        os.makedirs(home, exist_ok=True)
        with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mp.setenv("MUSICBERT_HOME", home)
            embedder = Embedder.load()
            nlu = NLU.load(embedder=embedder)
        _SHARED.update(embedder=embedder, nlu=nlu, home=os.fspath(home))
    return _SHARED["embedder"], _SHARED["nlu"]


def make_assistant(catalog, player=None):
    """An Assistant over ``catalog`` (filled with TRACKS) with search and QA, sharing models."""
    from assistant.dialogue import Assistant, build_qa, build_search

    embedder, nlu = shared_models()
    build_library(catalog, embedder)
    nlu.refresh_names(catalog)
    return Assistant(
        catalog,
        embedder,
        nlu=nlu,
        player=player,
        qa=build_qa(catalog, embedder, nlu),
        search=build_search(catalog, embedder),
    )
