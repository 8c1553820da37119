"""Fixtures every test module may use.

Each test runs with its own ``MUSICBERT_HOME`` so nothing touches a real
library. ``catalog_url`` runs a test once per catalog backend: SQLite (a file in that
home) and a real PostgreSQL + pgvector server (``tests.pg_server``, a fresh database);
for the PostgreSQL run ``MUSICBERT_DB`` points at it too, so ``open_catalog()`` and the
commands a test runs use it. ``shared_dir`` is ``../shared`` when present; tests that need it skip
with a reason when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from musicbert.paths import shared_dir as _shared_dir
from tests.catalogs import fresh_database

#: Shared fixtures in their own modules (``pg_server``, ``pg_url``: a real PostgreSQL;
#: ``one_thread``: one torch thread for tests of tiny tensors).
pytest_plugins = ("tests.pg_server", "tests.torch_threads")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch) -> Path:
    home = tmp_path_factory.mktemp("musicbert_home")
    monkeypatch.setenv("MUSICBERT_HOME", str(home))
    monkeypatch.delenv("MUSICBERT_DB", raising=False)
    return home


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request, isolated_home, monkeypatch):
    """The URL of an empty catalog on each backend in turn (see the module docstring)."""
    with fresh_database(request.param, isolated_home / "catalog.db", request) as url:
        if request.param != "sqlite":
            monkeypatch.setenv("MUSICBERT_DB", url)
        yield url


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def module_catalog_url(request, tmp_path_factory):
    """Like ``catalog_url``, for a module's shared library (QA engines, the chat)."""
    folder = tmp_path_factory.mktemp("catalog")
    with fresh_database(request.param, folder / "catalog.db", request) as url:
        yield url


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = _shared_dir()
    if path is None:
        pytest.skip("../shared is not present beside the project (development material)")
    return path


@pytest.fixture(scope="session")
def recordings(shared_dir) -> list[Path]:
    """The real recordings in ../shared/data/recordings."""
    files = sorted((shared_dir / "data" / "recordings").glob("*.ogg"))
    if not files:
        pytest.skip("no recordings in ../shared/data/recordings")
    return files
