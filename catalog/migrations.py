"""Schema versioning: create a fresh database or upgrade an older one in place.

The version lives in the ``meta`` table (key ``schema_version``). A new
database gets the current schema from the ORM in one go; an older one runs
each step of ``MIGRATIONS`` from its version up, all in ONE transaction, so a
failure leaves the database exactly as it was. SQLite runs it under
``BEGIN IMMEDIATE`` (its DDL is transactional, but the Python driver would
otherwise run DDL outside any transaction); PostgreSQL takes an advisory lock
so two programs opening an old database at once upgrade it once.

Migrations are written against the tables as they were at their version, not
against today's ORM classes, so that later changes to the models cannot alter
what an old step does.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    inspect,
    select,
    text,
)

from catalog.models import SCHEMA_VERSION, Base, Meta
from catalog.names import name_key
from musicbert.errors import ConfigError

#: Any number, the same for every program: the PostgreSQL advisory lock of upgrades.
_PG_UPGRADE_LOCK = 0x6D75_7369_6362


def _add_name_keys(conn: Connection) -> None:
    """Version 2: name keys, an index on tags.kind, one artist-less album per title."""
    md = MetaData()
    artists = Table(
        "artists",
        md,
        Column("id", Integer, primary_key=True),
        Column("name", String(512)),
        Column("name_key", String(512)),
    )
    albums = Table(
        "albums",
        md,
        Column("id", Integer, primary_key=True),
        Column("title", String(512)),
        Column("artist_id", Integer),
        Column("year", Integer),
        Column("title_key", String(512)),
    )
    tracks = Table(
        "tracks",
        md,
        Column("id", Integer, primary_key=True),
        Column("title", String(512)),
        Column("album_id", Integer),
        Column("title_key", String(512)),
    )
    tags = Table("tags", md, Column("id", Integer, primary_key=True), Column("kind", String(16)))

    key_type = String(512).compile(dialect=conn.dialect)
    for table, source, key in (
        (artists, "name", "name_key"),
        (albums, "title", "title_key"),
        (tracks, "title", "title_key"),
    ):
        conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {key} {key_type}"))
        rows = conn.execute(select(table.c.id, table.c[source])).all()
        if rows:
            conn.execute(
                table.update()
                .where(table.c.id == bindparam("row_id"))
                .values({key: bindparam("new_key")}),
                [{"row_id": row_id, "new_key": name_key(value)} for row_id, value in rows],
            )

    # Before the unique index can exist, merge artist-less albums that share a title
    # into the oldest one; their tracks move with them.
    duplicated = conn.execute(
        select(albums.c.title, func.min(albums.c.id))
        .where(albums.c.artist_id.is_(None))
        .group_by(albums.c.title)
        .having(func.count() > 1)
    ).all()
    for title, keep in duplicated:
        others = [
            row_id
            for (row_id,) in conn.execute(
                select(albums.c.id).where(
                    albums.c.artist_id.is_(None), albums.c.title == title, albums.c.id != keep
                )
            )
        ]
        year = conn.execute(
            select(func.min(albums.c.year)).where(albums.c.id.in_([keep, *others]))
        ).scalar()
        conn.execute(tracks.update().where(tracks.c.album_id.in_(others)).values(album_id=keep))
        conn.execute(albums.delete().where(albums.c.id.in_(others)))
        conn.execute(albums.update().where(albums.c.id == keep).values(year=year))

    for index in (
        Index("ix_artists_name_key", artists.c.name_key),
        Index("ix_albums_title_key", albums.c.title_key),
        Index("ix_tracks_title_key", tracks.c.title_key),
        Index("ix_tags_kind", tags.c.kind),
        Index(
            "uq_albums_title_no_artist",
            albums.c.title,
            unique=True,
            sqlite_where=text("artist_id IS NULL"),
            postgresql_where=text("artist_id IS NULL"),
        ),
    ):
        index.create(conn)


def _refold_name_keys(conn: Connection) -> None:
    """Version 3: name keys computed again by the one fold (apostrophes join, "#" and "ß").

    The NLU, QA and the catalog each had their own fold before; the keys stored
    under version 2 kept "don't" as "don t" and dropped "#".
    """
    md = MetaData()
    for table_name, source, key in (
        ("artists", "name", "name_key"),
        ("albums", "title", "title_key"),
        ("tracks", "title", "title_key"),
    ):
        table = Table(
            table_name,
            md,
            Column("id", Integer, primary_key=True),
            Column(source, String(512)),
            Column(key, String(512)),
        )
        changed = [
            {"row_id": row_id, "new_key": name_key(value)}
            for row_id, value, old in conn.execute(
                select(table.c.id, table.c[source], table.c[key])
            )
            if name_key(value) != old
        ]
        if changed:
            conn.execute(
                table.update()
                .where(table.c.id == bindparam("row_id"))
                .values({key: bindparam("new_key")}),
                changed,
            )


def _add_lufs(conn: Connection) -> None:
    """Version 4: integrated loudness (LUFS) and tempo pulse clarity on audio_features.

    Rows analysed before stay NULL in both until the track is analysed again; the QA
    ranks loudness by LUFS where every track has it and says so when it falls back.
    """
    kind = Double().compile(dialect=conn.dialect)  # what the ORM's float columns are
    for column in ("loudness_lufs", "tempo_confidence"):
        conn.execute(text(f"ALTER TABLE audio_features ADD COLUMN {column} {kind}"))


def _add_play_outcomes(conn: Connection) -> None:
    """Version 5: how each play ended (completed / skipped) and the seconds heard."""
    conn.execute(text("ALTER TABLE play_history ADD COLUMN outcome VARCHAR(16)"))
    conn.execute(text("ALTER TABLE play_history ADD COLUMN seconds FLOAT"))


#: version -> function upgrading a database from version-1 to version.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _add_name_keys,
    3: _refold_name_keys,
    4: _add_lufs,
    5: _add_play_outcomes,
}

#: The tables of a catalog; finding some of them without a version means "not ours".
_OUR_TABLES = frozenset(Base.metadata.tables)


def current_version(conn: Connection) -> int:
    """The stored schema version; 0 for an empty database."""
    names = set(inspect(conn).get_table_names())
    if "meta" not in names:
        if names & _OUR_TABLES:
            raise ConfigError(
                "this database has tables named like a catalog's but no schema version; "
                "it was not made by musicbert (use another --db)"
            )
        return 0
    row = conn.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar()
    try:
        return int(row) if row is not None else 0
    except ValueError:
        raise ConfigError(f"the catalog's schema version {row!r} is not a number") from None


def _set_version(conn: Connection, version: int) -> None:
    table = Meta.__table__
    if conn.execute(select(Meta.key).where(Meta.key == "schema_version")).first():
        conn.execute(
            table.update().where(table.c.key == "schema_version").values(value=str(version))
        )
    else:
        conn.execute(table.insert().values(key="schema_version", value=str(version)))


def _check_not_newer(found: int) -> None:
    if found > SCHEMA_VERSION:
        raise ConfigError(
            f"the catalog has schema version {found}, newer than this program's "
            f"{SCHEMA_VERSION}: upgrade musicbert, or use another database with --db"
        )


def upgrade(engine: Engine) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; return the version found before.

    A database already at the current version is only read, so opening the
    catalog never waits for a long ingest batch holding the write lock.
    """
    with engine.connect() as conn:
        found = current_version(conn)
    _check_not_newer(found)
    if found == SCHEMA_VERSION:
        return found
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(_PG_UPGRADE_LOCK)))
        found = current_version(conn)  # again, now that no one else can be upgrading
        _check_not_newer(found)
        if found == 0:
            Base.metadata.create_all(conn)
        else:
            for version in range(found + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](conn)
        _set_version(conn, SCHEMA_VERSION)
    return found
