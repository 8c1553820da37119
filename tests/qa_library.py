"""A small real catalog for the QA tests: SQLite rows written through catalog.models.

Two albums by two artists, two tracks called "Defeat", one track rendered from the
music21 chorale 'bach/bwv66.6', one track never analysed, model and file tags.
The QA test modules share ``qa_engine`` (each makes it its ``engine`` fixture) and ``ask``.
"""

from __future__ import annotations

import numpy as np

from assistant.qa import QAContext, QAEngine
from catalog.db import Catalog, open_catalog
from catalog.models import Album, Artist, AudioFeatures, Embedding, Tag, Track

#: title, artist, album, year, duration, licence, tempo, key, mode, key_conf, loudness,
#: file tags [(name, kind)], model tags [(name, conf)], score_ref, composer
ROWS = [
    (
        "Battle Epic",
        "Doug Kaufman",
        "The Battle for Wesnoth OST",
        2007,
        74.1,
        "GPL",
        132.0,
        "D",
        "minor",
        0.9,  # key confidence: margin over the runner-up key (catalog.analysis.key)
        -17.5,
        [("Romantic Classical", "genre")],
        [("classical", 0.62), ("strings", 0.41), ("loud", 0.2), ("no vocals", 0.05)],
        None,
        "Doug Kaufman",
    ),
    (
        "Defeat",
        "Timothy Pinkham",
        "The Battle for Wesnoth OST",
        2005,
        8.5,
        "GPL",
        70.0,
        "A",
        "minor",
        0.55,
        -22.0,
        [("Romantic Classical", "genre")],
        [("classical", 0.5), ("slow", 0.3)],
        None,
        "Timothy Pinkham",
    ),
    (
        "Defeat",
        "Ryan Reilly",
        "The Battle for Wesnoth OST",
        2007,
        14.2,
        "GPL",
        88.0,
        "C",
        "major",
        0.6,
        -25.0,
        [("Romantic Classical", "genre")],
        [("classical", 0.45)],
        None,
        "Ryan Reilly",
    ),
    (
        "Nebula",
        "Maxstack",
        "Endgame: Singularity Original Soundtrack",
        2012,
        240.0,
        "CC BY-SA 3.0",
        120.0,
        "F#",
        "minor",
        0.12,
        -14.0,
        [],
        [("electronic", 0.55), ("synth", 0.35), ("no vocals", 0.4)],
        None,
        None,
    ),
    (
        "Awakening",
        "Maxstack",
        "Endgame: Singularity Original Soundtrack",
        2012,
        208.0,
        "CC BY-SA 3.0",
        118.0,
        "Gb",
        "minor",
        0.5,
        -12.0,
        [],
        [("electronic", 0.4), ("ambient", 0.3), ("female vocalists", 0.33)],
        None,
        None,
    ),
    (
        "Chorale BWV 66.6",
        "music21 render",
        "Rendered scores",
        2024,
        40.0,
        "public domain",
        92.0,
        "F#",
        "minor",
        0.66,
        -20.0,
        [("piano", "instrument")],
        [("piano", 0.7), ("classical", 0.6)],
        "bach/bwv66.6",
        "Johann Sebastian Bach",
    ),
    (
        "Unheard Thing",
        "Maxstack",
        "Endgame: Singularity Original Soundtrack",
        2012,
        100.0,
        "CC BY-SA 3.0",
        None,
        None,
        None,
        None,
        None,
        [],
        [],
        None,
        None,
    ),
]


def build_library(
    url: str | None = None,
    vectors: dict[str, np.ndarray] | None = None,
    model_id: str = "test-model",
) -> Catalog:
    catalog = open_catalog(url)
    with catalog.session() as s:
        artists: dict[str, Artist] = {}
        albums: dict[str, Album] = {}
        for i, row in enumerate(ROWS):
            (
                title,
                artist,
                album,
                year,
                duration,
                licence,
                tempo,
                key,
                mode,
                kconf,
                loud,
                file_tags,
                model_tags,
                score_ref,
                composer,
            ) = row
            a = artists.get(artist) or Artist(name=artist)
            artists[artist] = a
            al = albums.get(album) or Album(title=album, artist=a, year=year)
            albums[album] = al
            t = Track(
                path=f"/music/{i}-{title}.ogg",
                content_hash=f"h{i}",
                title=title,
                artist=a,
                album=al,
                year=year,
                duration=duration,
                licence=licence,
                score_ref=score_ref,
                composer=composer,
                track_number=i + 1,
            )
            s.add(t)
            if tempo is not None:
                t.features = AudioFeatures(
                    tempo=tempo,
                    key=key,
                    mode=mode,
                    key_confidence=kconf,
                    loudness_db=loud,
                    peak_db=loud + 12,
                )
            for name, kind in file_tags:
                t.tags.append(Tag(name=name, kind=kind, origin="file", confidence=1.0))
            for name, conf in model_tags:
                t.tags.append(Tag(name=name, kind="other", origin="model", confidence=conf))
            if vectors and title in vectors:
                v = np.asarray(vectors[title], dtype="<f4")
                t.embeddings.append(Embedding(model_id=model_id, dim=v.size, vector=v.tobytes()))
    return catalog


def qa_engine(module_catalog_url):
    """A QA engine over this library; a test module makes it a fixture:
    ``engine = pytest.fixture(scope="module", name="engine")(qa_engine)``."""
    catalog = build_library(module_catalog_url)
    yield QAEngine(catalog)
    catalog.close()


def ask(engine, text, ctx=None):
    return engine.ask(text, ctx or QAContext())
