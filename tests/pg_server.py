"""A real, throw-away PostgreSQL server with pgvector for the tests.

The binaries are those of the ``pgserver`` wheel (PostgreSQL 16.2 with pgvector 0.6.2;
Debian 12 packages no pgvector), or ``MUSICBERT_PG_BIN``. The server is created with
``initdb`` and started with ``pg_ctl`` in a private temporary directory, listening only
on a Unix socket there (no TCP port, so parallel test runs never collide), and removed
when the test session ends.
PostgreSQL refuses to run as root, so as root the binaries run as the
``postgres`` user. Tests skip only when the binaries are absent, and under ``CI=true``
they fail instead: CI installs them.

Use it from any test module with ``from tests.pg_server import pg_url`` (the
package's conftest also registers this module as a plugin). ``pg_url`` is a
fresh, empty database per test; ``pg_server`` is the session-wide server;
``pg_server_without_pgvector`` a server of its own from a copy of the installation
without pgvector's files (the real "extension not available" fault).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def _default_bin() -> Path:
    """pgserver's bundled PostgreSQL 16 + pgvector; MUSICBERT_PG_BIN overrides it."""
    if os.environ.get("MUSICBERT_PG_BIN"):
        return Path(os.environ["MUSICBERT_PG_BIN"])
    try:
        import importlib.util

        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return Path("/nonexistent/pgserver/pginstall/bin")
    # resolved: the postgres user must reach it without following root-only links
    return Path(next(iter(spec.submodule_search_locations))).resolve() / "pginstall" / "bin"


PG_BIN = _default_bin()
PG_USER = "postgres"


@dataclass
class PgServer:
    """A running server: its socket directory and how to reach a database on it."""

    root: Path
    socket_dir: Path
    run_as: str | None
    #: The installation's bin folder (``PG_BIN``, or a copy: ``installation_without_pgvector``).
    bin_dir: Path = PG_BIN

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://{PG_USER}@/{database}?host={self.socket_dir}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg2

        conn = psycopg2.connect(host=str(self.socket_dir), user=PG_USER, dbname=database)
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(statement)
        finally:
            conn.close()

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
        return name

    def drop_database(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _command(run_as: str | None, *args: str) -> list[str]:
    return ["runuser", "-u", run_as, "--", *args] if run_as else list(args)


def _run(run_as: str | None, *args: str) -> None:
    result = subprocess.run(_command(run_as, *args), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr or result.stdout}"
        )


def start_server(
    root: Path | None = None,
    settings: dict[str, str] | None = None,
    bin_dir: Path | None = None,
) -> PgServer:
    """initdb + pg_ctl start in a new temporary directory; the caller must stop it.

    ``root``: a folder to keep the server in (reused, without initdb, when it already
    holds one: benchmarks keep their data between runs). ``settings``: extra ``-c``
    options (``shared_buffers``, ...), overriding the small test defaults. ``bin_dir``:
    another installation's bin folder (default ``PG_BIN``).
    """
    bin_dir = bin_dir or PG_BIN
    run_as = None
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam(PG_USER)
        except KeyError as exc:
            raise RuntimeError(
                "running as root, and there is no 'postgres' user to run PostgreSQL as"
            ) from exc
        run_as = PG_USER
    # Not pytest's tmp_path: that lives under a root-only directory the server cannot enter.
    keep = root is not None
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="musicbert-pg-"))
    root.mkdir(parents=True, exist_ok=True)
    if run_as:
        os.chown(root, pw.pw_uid, pw.pw_gid)
    os.chmod(root, 0o700)
    data = root / "data"
    try:
        if not (data / "PG_VERSION").exists():
            _run(
                run_as,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            )
        # Socket only, small memory, no fsync: a test server on a shared 2-core machine.
        values = {
            "listen_addresses": "''",
            "shared_buffers": "16MB",
            "max_connections": "40",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            **(settings or {}),
        }
        options = f"-k {root} " + " ".join(f"-c {k}={v}" for k, v in values.items())
        _run(
            run_as,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
    except BaseException:
        log = root / "server.log"
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        if detail:
            raise RuntimeError(f"PostgreSQL did not start:\n{detail}") from None
        raise
    return PgServer(root=root, socket_dir=root, run_as=run_as, bin_dir=bin_dir)


def stop_server(server: PgServer, remove: bool = True) -> None:
    try:
        _run(
            server.run_as,
            str(server.bin_dir / "pg_ctl"),
            "-D",
            str(server.root / "data"),
            "-m",
            "immediate" if remove else "fast",
            "-w",
            "stop",
        )
    finally:
        if remove:
            shutil.rmtree(server.root, ignore_errors=True)


def require_server_binaries() -> None:
    """Skip without the server binaries or the driver; under ``CI=true`` fail (CI installs
    them: ``tests.real_parts.require``)."""
    from tests.real_parts import require, require_module

    found = (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()
    require(found, f"the PostgreSQL server binaries in {PG_BIN} (pip install pgserver==0.1.4)")
    require_module("psycopg2", "pip install psycopg2-binary")


def installation_without_pgvector(dest: Path) -> Path:
    """A copy of the PostgreSQL installation of ``PG_BIN`` without pgvector (no
    ``vector.control``, ``vector--*.sql`` or ``vector.so``): a real server on which
    ``CREATE EXTENSION vector`` fails as on a stock PostgreSQL. Returns its bin folder.

    Files are hard links where the file system allows (the copy costs nothing), and the
    binaries are real files in the copy, so the server finds the copy's share and lib
    folders, not the original's (PostgreSQL locates them from its own executable). The
    wheel's layout is kept (``dest/pgserver/pginstall``, beside a link to
    ``pgserver.libs``): its binaries find their shared libraries through
    ``$ORIGIN/../../../pgserver.libs``.
    """

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    def no_vector(_folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n == "vector.so" or n.startswith("vector.control")} | {
            n for n in names if n.startswith("vector--") and n.endswith(".sql")
        }

    from tests.real_parts import require

    root = PG_BIN.parent  # .../site-packages/pgserver/pginstall
    relocatable = all((root / part).is_dir() for part in ("bin", "lib", "share"))
    require(relocatable, f"a relocatable PostgreSQL installation (bin, lib, share) in {root}")
    install = dest / root.parent.name / root.name
    install.mkdir(parents=True)
    for libs in root.parent.parent.glob("*.libs"):  # auditwheel's bundled libraries
        (dest / libs.name).symlink_to(libs, target_is_directory=True)
    for part in ("bin", "lib", "share"):
        shutil.copytree(root / part, install / part, ignore=no_vector, copy_function=link_or_copy)
    for folder in [dest, *(p for p in dest.rglob("*") if p.is_dir() and not p.is_symlink())]:
        folder.chmod(0o755)  # the postgres user must reach it
    return install / "bin"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole test session, removed afterwards."""
    require_server_binaries()
    server = start_server()
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def pg_server_without_pgvector() -> Iterator[PgServer]:
    """A real PostgreSQL 16 server whose installation has no pgvector, stopped afterwards."""
    require_server_binaries()
    copy = Path(tempfile.mkdtemp(prefix="musicbert-pg-novector-"))
    try:
        copy.chmod(0o755)
        server = start_server(bin_dir=installation_without_pgvector(copy))
        try:
            yield server
        finally:
            stop_server(server)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The SQLAlchemy URL of a new, empty database, dropped after the test."""
    name = pg_server.create_database()
    try:
        yield pg_server.url(name)
    finally:
        pg_server.drop_database(name)
