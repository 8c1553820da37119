"""``musicbert copy-catalog``: a SQLite catalog copied into PostgreSQL + pgvector.

The search tests' library (real MusicBERT text embeddings) is copied with the real
command; the copy answers the same searches with the same tracks in the same order,
an interrupted copy resumes without losing or doubling rows, and a copy into a
catalog holding other music is refused.
"""

from __future__ import annotations

import json
import warnings

import pytest
from sqlalchemy import func, select

from assistant.cli import main
from catalog.copy import TABLES, copy_catalog
from catalog.db import open_catalog
from catalog.filters import SearchFilters
from catalog.models import Artist, Embedding, Track
from catalog.search import SearchEngine
from musicbert.errors import ConfigError
from tests.test_search import LIBRARY, build_library

pytestmark = pytest.mark.postgres

QUERIES = [
    ("calm solo piano in the rain", None),
    ("loud electronic dance music", None),
    ("music", SearchFilters(licence="cc-by")),
    ("something slow", SearchFilters(tempo_max=100)),
    ("a night drive", SearchFilters(year_min=1990)),
]


@pytest.fixture(scope="module")
def embedder():
    from musicbert.embedder import Embedder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Embedder.load()


@pytest.fixture
def sqlite_url(tmp_path, embedder):
    url = f"sqlite:///{tmp_path / 'source.db'}"
    with open_catalog(url) as catalog:
        build_library(catalog, embedder)
    return url


def counts(url: str) -> dict[str, int]:
    with open_catalog(url) as catalog, catalog.session() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t, _ in TABLES}


def answers(url: str, embedder) -> list[list[tuple[str, float]]]:
    with open_catalog(url) as catalog:
        engine = SearchEngine(catalog, embedder)
        out = [[(h.title, h.score) for h in engine.search(q, k=5, filters=f)] for q, f in QUERIES]
        out.append([(h.title, h.score) for h in engine.similar("Night Drive", k=4)])
        return out


def test_copied_catalog_answers_the_same(sqlite_url, pg_url, embedder, capsys):
    assert main(["--db", sqlite_url, "copy-catalog", pg_url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["copied"]["tracks"] == len(LIBRARY) and not report["resumed"]
    assert any("pgvector HNSW index" in line for line in report["indexes"])
    assert counts(pg_url) == counts(sqlite_url)
    source, copy = answers(sqlite_url, embedder), answers(pg_url, embedder)
    for a, b in zip(source, copy, strict=True):
        assert [t for t, _ in a] == [t for t, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-3)
    with open_catalog(pg_url) as catalog, catalog.session() as s:  # ids continue after copy
        s.add(Artist(name="After The Copy"))
        s.flush()
        assert s.scalar(select(func.max(Artist.id))) > 1


def test_an_interrupted_copy_resumes(sqlite_url, pg_url, capsys):
    source, target = open_catalog(sqlite_url), open_catalog(pg_url)
    try:

        def interrupt(table: str, rows: int) -> None:
            if table == "tags" and rows >= 6:
                raise KeyboardInterrupt  # the person pressed ^C mid-copy

        with pytest.raises(KeyboardInterrupt):
            copy_catalog(source, target, batch=3, progress=interrupt)
        partial = counts(pg_url)
        assert (
            partial["tracks"] == len(LIBRARY) and 0 < partial["tags"] < counts(sqlite_url)["tags"]
        )
        assert partial["embeddings"] == 0
    finally:
        source.close()
        target.close()
    assert main(["--db", sqlite_url, "copy-catalog", pg_url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["resumed"] and report["copied"]["tracks"] == 0
    assert counts(pg_url) == counts(sqlite_url)
    with open_catalog(pg_url) as catalog, catalog.session() as s:
        assert s.scalar(select(func.count(func.distinct(Embedding.track_id)))) == len(LIBRARY)
    assert main(["--db", sqlite_url, "copy-catalog", pg_url, "--json"]) == 0  # again: no-op
    assert not any(json.loads(capsys.readouterr().out)["copied"].values())


def test_a_catalog_holding_other_music_is_refused(sqlite_url, pg_url, capsys):
    with open_catalog(pg_url) as catalog, catalog.session() as s:
        s.add(Track(path="/x.flac", content_hash="x", title="Mine"))
    with open_catalog(sqlite_url) as source, open_catalog(pg_url) as target:
        with pytest.raises(ConfigError, match="already holds music"):
            copy_catalog(source, target)
        with pytest.raises(ConfigError, match="same catalog"):
            copy_catalog(source, source)
    assert main(["--db", sqlite_url, "copy-catalog", pg_url]) == 2  # one line, no traceback
    assert "already holds music" in capsys.readouterr().err
