"""SearchEngine with the real Embedder (random MusicBERT weights, real MiniLM text tower).

Each track's stored vector is the model's own text embedding of a description,
so a query with that description must find it first (score 1), and every other
answer can be checked against brute force over the stored vectors.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from catalog.filters import SearchError, SearchFilters, parse_range
from catalog.keys import KeyNameError, parse_key
from catalog.models import (
    Album,
    Artist,
    AudioFeatures,
    Embedding,
    PlayHistory,
    Tag,
    Track,
)
from catalog.search import SearchEngine
from catalog.vector_index import VectorIndex
from musicbert.errors import MusicBertError, NotFoundError
from tests.catalogs import backend_catalog

# title: (description, artist, album, year, tempo, key, mode, duration, licence, tags)
LIBRARY = {
    "Rain Piano": (
        "calm solo piano in the rain",
        "Ana Lima",
        "Quiet Rooms",
        1995,
        72.0,
        "F#",
        "minor",
        200.0,
        "CC-BY 4.0",
        [("piano", "instrument", "file", 1.0), ("calm", "mood", "model", 0.71)],
    ),
    "Morning Piano": (
        "gentle piano melody at sunrise",
        "Ana Lima",
        "Quiet Rooms",
        1996,
        84.0,
        "D",
        "major",
        180.0,
        "CC-BY 4.0",
        [("piano", "instrument", "model", 0.64)],
    ),
    "Night Drive": (
        "fast electronic synthesizer beat",
        "Volt",
        "Neon",
        2015,
        128.0,
        "A",
        "minor",
        240.0,
        "CC0",
        [("electronic", "genre", "model", 0.8), ("dance", "genre", "model", 0.55)],
    ),
    "Club Lights": (
        "energetic dance music with heavy bass",
        "Volt",
        "Neon",
        2016,
        124.0,
        "C",
        "minor",
        300.0,
        "CC0",
        [("electronic", "genre", "file", 1.0)],
    ),
    "Old Road": (
        "acoustic guitar folk song",
        "Dusty Lane",
        None,
        1972,
        96.0,
        "G",
        "major",
        150.0,
        "CC-BY-SA 3.0",
        [("guitar", "instrument", "file", 1.0), ("folk", "genre", "user", 1.0)],
    ),
    "Blue Smoke": (
        "slow jazz saxophone late at night",
        "Miles Ahead",
        "Smoke",
        1961,
        66.0,
        "Bb",
        "minor",
        420.0,
        None,
        [("jazz", "genre", "model", 0.9), ("saxophone", "instrument", "model", 0.77)],
    ),
    "Thunder": (
        "loud heavy metal with distorted guitars",
        "Iron Hill",
        "Storm",
        1988,
        160.0,
        "E",
        "minor",
        260.0,
        None,
        [("metal", "genre", "file", 1.0), ("guitar", "instrument", "model", 0.5)],
    ),
    "Strings": (
        "classical string quartet",
        "Quartet Nova",
        "Chamber",
        2001,
        100.0,
        "Eb",
        "major",
        500.0,
        "CC-BY 4.0",
        [("classical", "genre", "file", 1.0), ("strings", "instrument", "model", 0.6)],
    ),
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two shared cores: a short text embeds faster on one thread than on two contending."""
    import faiss
    import torch

    before = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(before[0])
    faiss.omp_set_num_threads(before[1])


@pytest.fixture(scope="module")
def embedder():
    from musicbert.embedder import Embedder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Embedder.load()


def build_library(catalog, embedder) -> dict[str, int]:
    """Real rows for LIBRARY; each vector is the model's embedding of the description."""
    vectors = embedder.embed_text([row[0] for row in LIBRARY.values()])
    ids = {}
    with catalog.session() as session:
        artists: dict[str, Artist] = {}
        albums: dict[str, Album] = {}
        for (title, row), vector in zip(LIBRARY.items(), vectors, strict=True):
            _, artist, album, year, tempo, key, mode, duration, licence, tags = row
            if artist not in artists:
                artists[artist] = Artist(name=artist)
            if album and album not in albums:
                albums[album] = Album(title=album, artist=artists[artist], year=year)
            track = Track(
                path=f"/music/{title}.flac",
                content_hash=title,
                title=title,
                artist=artists[artist],
                album=albums.get(album),
                duration=duration,
                year=year,
                licence=licence,
            )
            track.features = AudioFeatures(tempo=tempo, key=key, mode=mode)
            track.tags = [Tag(name=n, kind=k, origin=o, confidence=c) for n, k, o, c in tags]
            session.add(track)
            session.flush()
            session.add(
                Embedding(
                    track_id=track.id,
                    model_id=str(embedder.model_id),
                    dim=embedder.dim,
                    vector=np.asarray(vector, np.float32).tobytes(),
                )
            )
            ids[title] = track.id
    return ids


catalog = pytest.fixture(name="catalog")(backend_catalog)


@pytest.fixture
def library(catalog, embedder):
    return build_library(catalog, embedder)


@pytest.fixture
def engine(catalog, embedder, library):
    return SearchEngine(catalog, embedder)


def stored_vectors(catalog, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    with catalog.session() as session:
        rows = session.execute(
            select(Embedding.track_id, Embedding.vector).where(Embedding.model_id == model_id)
        ).all()
    return np.array([r[0] for r in rows]), np.stack([np.frombuffer(r[1], np.float32) for r in rows])


def brute_force(catalog, model_id, query, k, exclude=()) -> list[int]:
    ids, vectors = stored_vectors(catalog, model_id)
    scores = vectors @ (query / np.linalg.norm(query))
    order = [int(ids[i]) for i in np.argsort(-scores, kind="stable") if ids[i] not in exclude]
    return order[:k]


def titles(hits) -> list[str]:
    return [hit.title for hit in hits]


# --------------------------------------------------------------------------- text search


def test_description_finds_its_track_first_with_scores_and_rows(engine):
    for title, row in LIBRARY.items():
        hits = engine.search(row[0], k=3)
        # cosine 1.0, plus the lexical evidence of the tags the description names
        assert hits[0].title == title and hits[0].score >= 1.0 - 1e-3
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert hits[0].artist == row[1] and hits[0].album == row[2]
        assert hits[0].path == f"/music/{title}.flac" and all(h.why for h in hits)


def test_ranking_equals_brute_force(engine, catalog, embedder):
    query = engine.query_vector("music for a rainy afternoon")
    assert query.shape == (embedder.dim,) and np.linalg.norm(query) == pytest.approx(1.0)
    hits = engine.search("music for a rainy afternoon", k=5)
    assert [h.track_id for h in hits] == brute_force(catalog, engine.model_id, query, 5)


def test_explanations_name_the_matching_tags_and_filters(engine):
    hits = engine.search(
        "calm piano", k=1, filters=SearchFilters(tempo_min=60, tempo_max=90, year_min=1990)
    )
    why = hits[0].why
    assert hits[0].title in ("Rain Piano", "Morning Piano")
    assert "tag: piano (file)" in why or "tag: piano (model 0.64)" in why
    assert any(w.startswith("tempo ") and w.endswith("in 60-90") for w in why)
    assert any(w.startswith("year 199") for w in why)
    rain = engine.search("calm solo piano in the rain", k=1, filters=SearchFilters(key="F# minor"))
    assert "tag: calm (model 0.71)" in rain[0].why and "key F# minor" in rain[0].why


FILTER_CASES = [
    (SearchFilters(artist="ana lima"), {"Rain Piano", "Morning Piano"}),
    (SearchFilters(artist="volt"), {"Night Drive", "Club Lights"}),
    (SearchFilters(album="neon"), {"Night Drive", "Club Lights"}),
    (SearchFilters(tag="guitar"), {"Old Road", "Thunder"}),
    (SearchFilters(tag="GUITAR "), {"Old Road", "Thunder"}),
    (SearchFilters(tag=["piano", "calm"]), {"Rain Piano"}),
    (SearchFilters(year_min=1990, year_max=2000), {"Rain Piano", "Morning Piano"}),
    (SearchFilters(year_max=1975), {"Old Road", "Blue Smoke"}),
    (SearchFilters(tempo_min=120), {"Night Drive", "Club Lights", "Thunder"}),
    (SearchFilters(tempo_min=60, tempo_max=90), {"Rain Piano", "Morning Piano", "Blue Smoke"}),
    (SearchFilters(key="Gb minor"), {"Rain Piano"}),  # enharmonic: stored as F#
    (SearchFilters(key="A#"), {"Blue Smoke"}),  # stored as Bb
    (SearchFilters(key="D#", mode="major"), {"Strings"}),
    (
        SearchFilters(mode="minor"),
        {"Rain Piano", "Night Drive", "Club Lights", "Blue Smoke", "Thunder"},
    ),
    (SearchFilters(duration_min=400), {"Blue Smoke", "Strings"}),
    (SearchFilters(duration_max=180), {"Morning Piano", "Old Road"}),
    (SearchFilters(licence="cc0"), {"Night Drive", "Club Lights"}),
    (SearchFilters(licence="CC-BY", tempo_max=90), {"Rain Piano", "Morning Piano"}),
]


@pytest.mark.parametrize("filters, expected", FILTER_CASES)
def test_filters_restrict_and_still_fill_k(engine, filters, expected):
    for k in (1, 2, 10):
        hits = engine.search("music", k=k, filters=filters)
        assert set(titles(hits)) <= expected
        assert len(hits) == min(k, len(expected))


def test_filtered_ranking_is_the_best_of_the_allowed(engine, catalog, library):
    allowed = {library["Rain Piano"], library["Morning Piano"], library["Blue Smoke"]}
    query = engine.query_vector("fast electronic synthesizer beat")
    hits = engine.search(
        "fast electronic synthesizer beat", k=2, filters=SearchFilters(tempo_max=90)
    )
    exclude = set(library.values()) - allowed
    assert [h.track_id for h in hits] == brute_force(catalog, engine.model_id, query, 2, exclude)


def test_k_larger_than_catalog_returns_all(engine):
    assert sorted(titles(engine.search("anything", k=100))) == sorted(LIBRARY)


def test_filters_matching_nothing_say_so(engine):
    with pytest.raises(NotFoundError, match="no track matches: by Nobody"):
        engine.search("music", filters=SearchFilters(artist="Nobody"))
    with pytest.raises(NotFoundError, match="between 200 and 300 BPM"):
        engine.search("music", filters=SearchFilters(tempo_min=200, tempo_max=300))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda e: e.search("", k=3), "empty"),
        (lambda e: e.search("   ", k=3), "empty"),
        (lambda e: e.search("piano", k=0), "k must be"),
        (lambda e: e.search("piano", k=-2), "k must be"),
        (lambda e: e.search("piano", diversity=1.5), "diversity"),
        (lambda e: e.search("piano", filters=SearchFilters(key="H# moll")), "cannot read the key"),
        (lambda e: e.search("piano", filters=SearchFilters(tempo_min=90, tempo_max=60)), "empty"),
        (lambda e: e.search("p", filters=SearchFilters(key="A minor", mode="major")), "disagree"),
        (lambda e: e.refine("piano", toward="", away=None), "which way"),
        (lambda e: e.mix([]), "at least one"),
    ],
)
def test_bad_requests_raise_clear_errors(engine, call, message):
    with pytest.raises(MusicBertError, match=message):
        call(engine)


def test_empty_catalog_and_catalog_without_vectors(catalog, embedder):
    engine = SearchEngine(catalog, embedder)
    with pytest.raises(NotFoundError, match="catalog is empty"):
        engine.search("piano")
    with catalog.session() as session:
        session.add(Track(path="/a.flac", content_hash="a", title="A"))
    with pytest.raises(NotFoundError, match="reindex"):
        engine.search("piano")


# --------------------------------------------------------------------------- similar, mix, refine


def test_similar_excludes_the_seed_and_ranks_by_its_vector(engine, catalog, library):
    seed = library["Rain Piano"]
    hits = engine.similar(seed, k=4)
    vector = engine.index.vectors([seed])[0]
    assert seed not in [h.track_id for h in hits]
    assert [h.track_id for h in hits] == brute_force(catalog, engine.model_id, vector, 4, {seed})
    morning = next(h for h in hits if h.title == "Morning Piano")
    assert "shares tags: piano" in morning.why and "same artist: Ana Lima" in morning.why


def test_similar_by_name_and_unknown_names(engine, library):
    assert engine.resolve_track("rain piano") == library["Rain Piano"]
    assert engine.resolve_track(str(library["Thunder"])) == library["Thunder"]
    assert engine.similar("Night Drive", k=1)[0].title != "Night Drive"
    with pytest.raises(NotFoundError, match="no track called 'Zyxwv Qqq'"):
        engine.similar("Zyxwv Qqq")
    with pytest.raises(NotFoundError, match="no track with id 99999"):
        engine.similar(99999)
    with pytest.raises(NotFoundError, match="did you mean 'Thunder'"):
        engine.similar("Thundr Storm")


def test_tracks_without_embedding(engine, catalog):
    with catalog.session() as session:
        track = Track(path="/new.flac", content_hash="new", title="Unembedded", licence="Odd")
        session.add(track)
    with pytest.raises(NotFoundError, match="no embedding"):
        engine.similar("Unembedded")
    with pytest.raises(NotFoundError, match=r"1 track.* \(with licence odd\) have no embedding"):
        engine.search("music", filters=SearchFilters(licence="odd"))


def test_mix_centres_on_the_seeds(engine, catalog, library):
    seeds = [library["Rain Piano"], library["Blue Smoke"]]
    hits = engine.mix(seeds, k=3)
    vectors = engine.index.vectors(seeds)
    centre = vectors.mean(axis=0)
    expected = brute_force(catalog, engine.model_id, centre, 3, set(seeds))
    assert [h.track_id for h in hits] == expected
    assert engine.mix(["Rain Piano", "Blue Smoke"], k=3)[0].track_id == expected[0]


def test_refine_moves_the_query_along_a_text_direction(engine, catalog):
    base = engine.query_vector("calm solo piano in the rain")
    toward = engine.query_vector("fast electronic synthesizer beat")
    away = engine.query_vector("calm solo piano in the rain")
    moved = engine.refined_vector(
        base, "fast electronic synthesizer beat", "calm solo piano in the rain", 0.5
    )
    direction = toward - away
    expected = base + 0.5 * direction / np.linalg.norm(direction)
    assert np.allclose(moved, expected / np.linalg.norm(expected), atol=1e-5)
    hits = engine.refine(
        "calm solo piano in the rain", toward="fast electronic synthesizer beat", k=3, strength=4.0
    )
    assert hits[0].title == "Night Drive"
    assert "moved toward 'fast electronic synthesizer beat'" in hits[0].why
    assert [h.track_id for h in hits] == brute_force(
        catalog,
        engine.model_id,
        engine.refined_vector(base, "fast electronic synthesizer beat", None, 4.0),
        3,
    )
    chained = engine.refine(moved, toward=None, away="slow jazz saxophone late at night", k=2)
    assert "moved away from 'slow jazz saxophone late at night'" in chained[0].why


def test_diversity_spreads_near_duplicates(catalog, embedder, library):
    vector = embedder.embed_text(["calm solo piano in the rain"])[0]
    rng = np.random.default_rng(0)
    with catalog.session() as session:
        for i in range(4):  # four near-copies of Rain Piano
            track = Track(path=f"/dup{i}.flac", content_hash=f"d{i}", title=f"Rain Piano take {i}")
            session.add(track)
            session.flush()
            noisy = vector + 0.01 * rng.standard_normal(vector.shape).astype(np.float32)
            session.add(
                Embedding(
                    track_id=track.id,
                    model_id=str(embedder.model_id),
                    dim=embedder.dim,
                    vector=(noisy / np.linalg.norm(noisy)).astype(np.float32).tobytes(),
                )
            )
    engine = SearchEngine(catalog, embedder)
    plain = titles(engine.search("calm solo piano in the rain", k=4))
    assert all(t.startswith("Rain Piano") for t in plain)
    # the query is the duplicates' own vector, so at diversity 0.5 every MMR gain ties near
    # 0 and noise decides; 0.7 makes novelty win whatever the model's geometry
    diverse = titles(engine.search("calm solo piano in the rain", k=4, diversity=0.7))
    assert diverse[0].startswith("Rain Piano")
    assert sum(t.startswith("Rain Piano") for t in diverse) <= 2
    assert titles(engine.search("calm solo piano in the rain", k=4, diversity=0.0)) == plain


def test_exclusions_and_recently_played(engine, catalog, library):
    now = datetime(2026, 1, 1, 12)
    with catalog.session() as session:
        for minutes, title in ((30, "Rain Piano"), (20, "Morning Piano"), (10, "Morning Piano")):
            session.add(
                PlayHistory(track_id=library[title], played_at=now - timedelta(minutes=minutes))
            )
    hits = engine.search(
        "calm solo piano in the rain", k=10, filters=SearchFilters(exclude_recent=1)
    )
    assert "Morning Piano" not in titles(hits) and "Rain Piano" in titles(hits)
    hits = engine.search("calm solo piano", k=10, filters=SearchFilters(exclude_recent=2))
    assert not {"Morning Piano", "Rain Piano"} & set(titles(hits)) and len(hits) == 6
    hits = engine.search(
        "music", k=3, filters=SearchFilters(exclude_ids={library["Thunder"]}, tag="guitar")
    )
    assert titles(hits) == ["Old Road"]
    with pytest.raises(NotFoundError, match="excluded"):
        engine.search("x", filters=SearchFilters(tag="metal", exclude_ids={library["Thunder"]}))


# --------------------------------------------------------------------------- staying in step


def test_other_models_vectors_are_ignored_never_a_dimension_crash(catalog, embedder, library):
    rng = np.random.default_rng(1)
    with catalog.session() as session:
        for track_id in library.values():
            v = rng.standard_normal(16).astype(np.float32)
            session.add(
                Embedding(
                    track_id=track_id,
                    model_id="old-model",
                    dim=16,
                    vector=(v / np.linalg.norm(v)).tobytes(),
                )
            )
    old_index = VectorIndex.open(catalog, "old-model", 16)
    engine = SearchEngine(catalog, embedder, index=old_index)
    assert engine.index is not old_index and engine.index.dim == embedder.dim
    assert engine.search("calm solo piano in the rain", k=1)[0].title == "Rain Piano"


def test_index_follows_sql_changes_between_queries(engine, catalog, embedder, library):
    with catalog.session() as session:
        session.delete(session.get(Track, library["Rain Piano"]))
    assert "Rain Piano" not in titles(engine.search("calm solo piano in the rain", k=10))
    new_vector = embedder.embed_text(["calm solo piano in the rain"])[0]
    with catalog.session() as session:  # re-embed Thunder as ingest does: delete + insert
        session.query(Embedding).filter_by(track_id=library["Thunder"]).delete()
        session.add(
            Embedding(
                track_id=library["Thunder"],
                model_id=str(embedder.model_id),
                dim=embedder.dim,
                vector=new_vector.tobytes(),
            )
        )
    assert engine.search("calm solo piano in the rain", k=1)[0].title == "Thunder"
    if catalog.is_sqlite:  # the FAISS copy caught up; pgvector's vectors are the rows
        assert any("in step" in notice for notice in engine.notices)


def test_parse_key_and_range():
    assert parse_key("F# minor") == ("F#", "minor")
    assert parse_key("gb min") == ("F#", "minor")
    assert parse_key("Bbm") == ("A#", "minor")
    assert parse_key("E flat major") == ("D#", "major")
    assert parse_key("minor") == (None, "minor")
    assert parse_key("c") == ("C", None)
    assert parse_range("60-90") == (60, 90)
    assert parse_range("60-") == (60, None) and parse_range("-90") == (None, 90)
    assert parse_range("1995") == (1995, 1995)
    assert parse_range("1:00-5:30", clock=True) == (60, 330)
    for bad in ("fast", "90-60", "-", ""):
        with pytest.raises(SearchError):
            parse_range(bad)
    with pytest.raises(KeyNameError):
        parse_key("H#")
    with pytest.raises(SearchError):
        SearchFilters(key="H#").check()


@pytest.mark.slow
def test_ingest_adds_delete_removes_reembed_replaces(catalog, embedder, tmp_path):
    """Real ingestion (analysis, musicnn tags, MusicBERT audio embedding) feeding the engine."""
    from catalog.ingest import ingest
    from tests.audio_fixtures import write_audio

    folder = tmp_path / "music"
    folder.mkdir()
    for i, freq in enumerate((220.0, 330.0, 440.0)):
        write_audio(folder / f"t{i}.wav", seconds=3.0, freq=freq, seed=i)
    engine = SearchEngine(catalog, embedder)
    with pytest.raises(NotFoundError, match="empty"):
        engine.search("a tone")

    ingest(catalog, [folder], embedder=embedder, workers=1, progress=False)
    with catalog.session() as session:
        by_name = {t.path.rsplit("/", 1)[-1]: t.id for t in session.scalars(select(Track))}
    assert len(engine.search("a plucked tone", k=10)) == 3  # adds
    ids, vectors = stored_vectors(catalog, engine.model_id)
    assert np.allclose(engine.index.vectors(ids), vectors, atol=1e-6)

    with catalog.session() as session:  # delete removes
        session.delete(session.get(Track, by_name["t0.wav"]))
    hits = engine.search("a plucked tone", k=10)
    assert by_name["t0.wav"] not in [h.track_id for h in hits] and len(hits) == 2

    before = engine.index.vectors([by_name["t1.wav"]])[0]
    write_audio(folder / "t1.wav", seconds=4.0, freq=660.0, seed=9)  # the file changes
    ingest(catalog, [folder / "t1.wav"], embedder=embedder, workers=1, progress=False)
    engine.search("a plucked tone", k=10)
    ids, vectors = stored_vectors(catalog, engine.model_id)
    after = engine.index.vectors([by_name["t1.wav"]])[0]
    assert by_name["t1.wav"] in ids.tolist() and engine.index.count == 2  # re-embed replaces
    assert np.allclose(after, vectors[ids.tolist().index(by_name["t1.wav"])], atol=1e-6)
    assert not np.allclose(after, before, atol=1e-4)
