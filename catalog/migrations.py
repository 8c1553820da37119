"""Schema versioning: create a fresh database or upgrade an older one in place.

The version lives in the ``meta`` table. Each entry of ``MIGRATIONS`` upgrades
from version N-1 to N inside one transaction.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select

from catalog.models import SCHEMA_VERSION, Base, Meta

#: version -> function upgrading a database from version-1 to version.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("meta"):
        return 0
    row = conn.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar()
    return int(row) if row is not None else 0


def _set_version(conn: Connection, version: int) -> None:
    table = Meta.__table__
    if conn.execute(select(Meta.key).where(Meta.key == "schema_version")).first():
        conn.execute(
            table.update().where(table.c.key == "schema_version").values(value=str(version))
        )
    else:
        conn.execute(table.insert().values(key="schema_version", value=str(version)))


def upgrade(engine: Engine) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; return the version found before."""
    with engine.begin() as conn:
        found = current_version(conn)
        if found == 0:
            Base.metadata.create_all(conn)
        else:
            for version in range(found + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](conn)
        _set_version(conn, SCHEMA_VERSION)
    return found
