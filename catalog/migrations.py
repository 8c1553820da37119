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
from sqlalchemy.exc import DBAPIError

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


#: bytea of little-endian float32 -> a unit pgvector ``vector`` (L2-normalised, so inner
#: product is cosine; a zero vector stays zero), in SQL (no C, no extension of
#: ours): each 4 bytes rebuilt as sign * 2^(exp-127) * (1 + mantissa / 2^23), subnormals
#: included, exactly (a float32 survives float8 arithmetic unchanged). PostgreSQL gives
#: its bit operators one precedence, left to right: hence the parentheses.
_F4_TO_VECTOR = """
CREATE OR REPLACE FUNCTION musicbert_f4_vector(b bytea) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT array_agg(CASE WHEN norm > 0 THEN x / norm ELSE x END ORDER BY i)::real[]::vector
  FROM (
    SELECT i, x, sqrt(sum(x * x) OVER ()) AS norm
    FROM (
      SELECT i, (CASE WHEN (u >> 31) = 1 THEN -1 ELSE 1 END)::float8 * CASE
                  WHEN (u >> 23) & 255 = 0 THEN (u & 8388607)::float8 * 2::float8 ^ -149
                  ELSE (1 + (u & 8388607)::float8 / 8388608) * 2::float8 ^ (((u >> 23) & 255) - 127)
                END AS x
      FROM (SELECT i, get_byte(b, 4 * i)::bigint | (get_byte(b, 4 * i + 1)::bigint << 8)
                      | (get_byte(b, 4 * i + 2)::bigint << 16)
                      | (get_byte(b, 4 * i + 3)::bigint << 24) AS u
            FROM generate_series(0, length(b) / 4 - 1) AS i) AS words
    ) AS floats
  ) AS unit
$$
"""

#: Keeps ``embedding`` in step with ``vector`` in the writer's own transaction, whatever
#: the writer (ORM, Core, another program). A writer may give both (a bulk copy); an
#: update that changes ``vector`` but not ``embedding`` recomputes it.
_SYNC_TRIGGER = """
CREATE OR REPLACE FUNCTION musicbert_embedding_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.vector IS NULL THEN
    NEW.embedding := NULL;
  ELSIF TG_OP = 'INSERT' THEN
    IF NEW.embedding IS NULL THEN NEW.embedding := musicbert_f4_vector(NEW.vector); END IF;
  ELSIF NEW.vector IS DISTINCT FROM OLD.vector
        AND NEW.embedding IS NOT DISTINCT FROM OLD.embedding THEN
    NEW.embedding := musicbert_f4_vector(NEW.vector);
  END IF;
  RETURN NEW;
END
$$
"""


def _require_pgvector(conn: Connection) -> None:
    """``CREATE EXTENSION vector`` where it is missing and allowed; else a clear error."""
    if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).first():
        return
    database = conn.execute(text("SELECT current_database()")).scalar()
    available = text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    if not conn.execute(available).first():
        number = conn.execute(text("SHOW server_version_num")).scalar()
        major = int(number) // 10000 if str(number).isdigit() else "<version>"
        raise ConfigError(
            f"the PostgreSQL {major} server holding database {database!r} has no pgvector "
            "extension ('vector'), which the catalog needs for its vectors: install pgvector "
            f"on that server (Debian/Ubuntu with the PGDG repository: apt-get install "
            f"postgresql-{major}-pgvector; a managed database: enable the 'vector' "
            "extension), then open the catalog again"
        )
    try:
        with conn.begin_nested():
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(
            f"the catalog needs the pgvector extension ('vector') in database {database!r} "
            f"and this user may not create it ({reason}): ask an administrator to run "
            f'"CREATE EXTENSION vector;" in {database!r}, then open the catalog again'
        ) from exc


def _add_pgvector(conn: Connection) -> None:
    """Version 6: on PostgreSQL, ``embeddings.embedding vector`` filled from ``vector``
    and kept in step by a trigger. The HNSW index is per model (a partial expression
    index over ``embedding::vector(dim)``), created when a model's index is first opened
    (``catalog.pgvector_index``). Nothing to do on other databases."""
    if conn.dialect.name != "postgresql":
        return
    _require_pgvector(conn)
    conn.execute(text("ALTER TABLE embeddings ADD COLUMN IF NOT EXISTS embedding vector"))
    conn.execute(text(_F4_TO_VECTOR))
    conn.execute(text(_SYNC_TRIGGER))
    conn.execute(text("DROP TRIGGER IF EXISTS embeddings_vector_sync ON embeddings"))
    conn.execute(
        text(
            "CREATE TRIGGER embeddings_vector_sync BEFORE INSERT OR UPDATE ON embeddings "
            "FOR EACH ROW EXECUTE FUNCTION musicbert_embedding_sync()"
        )
    )
    conn.execute(
        text(
            "UPDATE embeddings SET embedding = musicbert_f4_vector(vector) "
            "WHERE vector IS NOT NULL AND embedding IS NULL"
        )
    )


#: version -> function upgrading a database from version-1 to version.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _add_name_keys,
    3: _refold_name_keys,
    4: _add_lufs,
    5: _add_play_outcomes,
    6: _add_pgvector,
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
            _add_pgvector(conn)  # the one step the ORM's tables do not hold
        else:
            for version in range(found + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](conn)
        _set_version(conn, SCHEMA_VERSION)
    return found
