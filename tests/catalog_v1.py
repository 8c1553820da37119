"""The catalog's schema version 1, frozen, and a populated database made with it.

Written out table by table as the first released models made them, so the
migration tests start from a real old database, not from today's schema with
parts removed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)

V1 = MetaData()

meta = Table(
    "meta",
    V1,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
artists = Table(
    "artists",
    V1,
    Column("id", Integer, primary_key=True),
    Column("name", String(512), nullable=False, unique=True),
)
albums = Table(
    "albums",
    V1,
    Column("id", Integer, primary_key=True),
    Column("title", String(512), nullable=False),
    Column("artist_id", Integer, ForeignKey("artists.id", ondelete="SET NULL")),
    Column("year", Integer),
    UniqueConstraint("title", "artist_id"),
)
tracks = Table(
    "tracks",
    V1,
    Column("id", Integer, primary_key=True),
    Column("path", Text, nullable=False, unique=True),
    Column("content_hash", String(64), nullable=False, index=True),
    Column("file_size", Integer, nullable=False),
    Column("title", String(512), nullable=False),
    Column("artist_id", Integer, ForeignKey("artists.id", ondelete="SET NULL"), index=True),
    Column("album_id", Integer, ForeignKey("albums.id", ondelete="SET NULL"), index=True),
    Column("composer", String(512)),
    Column("track_number", Integer),
    Column("duration", Float, nullable=False),
    Column("sample_rate", Integer, nullable=False),
    Column("channels", Integer, nullable=False),
    Column("year", Integer),
    Column("licence", String(256)),
    Column("source", Text),
    Column("attribution", Text),
    Column("score_ref", Text),
    Column("added_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)
tags = Table(
    "tags",
    V1,
    Column("id", Integer, primary_key=True),
    Column(
        "track_id",
        Integer,
        ForeignKey("tracks.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("origin", String(16), nullable=False),
    Column("confidence", Float, nullable=False),
    UniqueConstraint("track_id", "name", "origin"),
    Index("ix_tags_name", "name"),
)
audio_features = Table(
    "audio_features",
    V1,
    Column("track_id", Integer, ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
    Column("tempo", Double),
    Column("tempo_method", String(128)),
    Column("key", String(4)),
    Column("mode", String(8)),
    Column("key_confidence", Double),
    Column("key_method", String(128)),
    Column("loudness_db", Double),
    Column("peak_db", Double),
    Column("silent", Boolean, nullable=False),
    Column("analysed_at", DateTime, nullable=False),
)
embeddings = Table(
    "embeddings",
    V1,
    Column("id", Integer, primary_key=True),
    Column(
        "track_id",
        Integer,
        ForeignKey("tracks.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("model_id", String(128), nullable=False, index=True),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("track_id", "model_id"),
)
playlists = Table(
    "playlists",
    V1,
    Column("id", Integer, primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
)
playlist_items = Table(
    "playlist_items",
    V1,
    Column("id", Integer, primary_key=True),
    Column(
        "playlist_id",
        Integer,
        ForeignKey("playlists.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column(
        "track_id",
        Integer,
        ForeignKey("tracks.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("position", Integer, nullable=False),
)
play_history = Table(
    "play_history",
    V1,
    Column("id", Integer, primary_key=True),
    Column(
        "track_id",
        Integer,
        ForeignKey("tracks.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("played_at", DateTime, nullable=False, index=True),
    Column("source", String(64)),
)

WHEN = datetime(2026, 1, 2, 3, 4, 5)
VECTOR = bytes(range(16))

#: What the old database holds; tests compare the upgraded rows with it.
ARTISTS = [(1, "Beyoncé"), (2, "Sigur Rós"), (3, "AC/DC")]
ALBUMS = [
    (1, "Ágætis byrjun", 2, 1999),
    (2, "Mixtape", None, None),
    (3, "Mixtape", None, 2004),  # same title, no artist: merged into album 1 of that title
    (4, "Back in Black", 3, 1980),
]
TRACKS = [
    # id, path, title, artist_id, album_id, duration, licence, source, attribution
    (1, "/music/halo.ogg", "Halo", 1, None, 261.5, "proprietary", "CD", None),
    (2, "/music/svefn.flac", "Svefn-g-englar", 2, 1, 600.0, "CC BY 3.0", "web", "Sigur Rós"),
    (3, "/music/a.wav", "Tape One", None, 2, 30.0, None, None, None),
    (4, "/music/b.wav", "Tape Two", None, 3, 45.0, None, None, None),
    (5, "/music/hells.mp3", "Hells Bells", 3, 4, 312.0, "proprietary", "LP", None),
]


def build_v1_database(url: str) -> None:
    """Create a version-1 catalog at ``url`` and fill every table with a few rows."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(
            engine,
            "connect",
            lambda dbapi_conn, _record: dbapi_conn.execute("PRAGMA foreign_keys=ON"),
        )
    try:
        with engine.begin() as conn:
            V1.create_all(conn)
            conn.execute(meta.insert().values(key="schema_version", value="1"))
            conn.execute(artists.insert(), [{"id": i, "name": n} for i, n in ARTISTS])
            conn.execute(
                albums.insert(),
                [{"id": i, "title": t, "artist_id": a, "year": y} for i, t, a, y in ALBUMS],
            )
            conn.execute(
                tracks.insert(),
                [
                    {
                        "id": i,
                        "path": p,
                        "content_hash": f"{i:064x}",
                        "file_size": 1000 * i,
                        "title": t,
                        "artist_id": a,
                        "album_id": b,
                        "composer": None,
                        "track_number": i,
                        "duration": d,
                        "sample_rate": 44100,
                        "channels": 2,
                        "year": None,
                        "licence": lic,
                        "source": src,
                        "attribution": attr,
                        "score_ref": None,
                        "added_at": WHEN,
                        "updated_at": WHEN,
                    }
                    for i, p, t, a, b, d, lic, src, attr in TRACKS
                ],
            )
            conn.execute(
                tags.insert(),
                [
                    {
                        "track_id": 1,
                        "name": "pop",
                        "kind": "genre",
                        "origin": "file",
                        "confidence": 1.0,
                    },
                    {
                        "track_id": 2,
                        "name": "post-rock",
                        "kind": "genre",
                        "origin": "file",
                        "confidence": 1.0,
                    },
                    {
                        "track_id": 2,
                        "name": "calm",
                        "kind": "mood",
                        "origin": "model",
                        "confidence": 0.75,
                    },
                    {
                        "track_id": 5,
                        "name": "rock",
                        "kind": "genre",
                        "origin": "user",
                        "confidence": 1.0,
                    },
                ],
            )
            conn.execute(
                audio_features.insert().values(
                    track_id=2,
                    tempo=62.5,
                    tempo_method="beat_track",
                    key="F#",
                    mode="major",
                    key_confidence=0.8,
                    key_method="krumhansl",
                    loudness_db=-18.0,
                    peak_db=-1.0,
                    silent=False,
                    analysed_at=WHEN,
                )
            )
            conn.execute(
                embeddings.insert().values(
                    track_id=2, model_id="m1", dim=4, vector=VECTOR, created_at=WHEN
                )
            )
            conn.execute(playlists.insert().values(id=1, name="evening", created_at=WHEN))
            conn.execute(
                playlist_items.insert(),
                [
                    {"playlist_id": 1, "track_id": 2, "position": 0},
                    {"playlist_id": 1, "track_id": 4, "position": 1},
                ],
            )
            conn.execute(play_history.insert().values(track_id=5, played_at=WHEN, source="chat"))
            if engine.dialect.name == "postgresql":
                # Explicit ids above do not move PostgreSQL's sequences; a real v1 database
                # made by the ORM would have them past the last row.
                for table in (artists, albums, tracks, playlists):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT max(id) FROM {table.name}))"
                    )
    finally:
        engine.dispose()


def row_count(conn, table) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar_one()
