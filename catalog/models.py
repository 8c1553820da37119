"""The catalog's tables as a typed SQLAlchemy 2.0 ORM.

One row per thing a person names (artist, album, track, playlist) plus what we
learn about tracks (tags, audio features, embeddings) and what happens to them
(play history). Works unchanged on SQLite and PostgreSQL.

Schema history (each step is a migration in ``catalog.migrations``):

1. The first schema.
2. Name keys (``artists.name_key``, ``albums.title_key``, ``tracks.title_key``,
   see ``catalog.names``) so that "beyonce" finds "Beyoncé" through an index;
   an index on ``tags.kind``; at most one artist-less album per title.
3. Name keys folded again by the one fold that NLU and QA now share too.
4. Integrated loudness (LUFS) and tempo pulse clarity on ``audio_features``.
5. How each play ended (``play_history.outcome``: completed / skipped) and its seconds.
6. On PostgreSQL only: ``embeddings.embedding``, a pgvector copy of ``vector`` kept
   in step by a trigger (``catalog.pgvector_index``). Nothing changes on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from catalog.names import name_key

#: Bump together with a migration in ``catalog.migrations``.
SCHEMA_VERSION = 6

TAG_KINDS = ("genre", "mood", "instrument", "other")
TAG_ORIGINS = ("file", "user", "model")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _key_of(column: str):
    """Column default computing a name key for Core inserts that bypass the ORM validators."""

    def default(context: DefaultExecutionContext) -> str | None:
        return name_key(context.get_current_parameters().get(column))

    return default


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key/value facts about the database itself (schema version, index model id)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Artist(Base):
    __tablename__ = "artists"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(512), unique=True)
    #: ``catalog.names.name_key(name)``, kept in step by the validator below.
    name_key: Mapped[str | None] = mapped_column(String(512), index=True, default=_key_of("name"))

    tracks: Mapped[list[Track]] = relationship(back_populates="artist")
    albums: Mapped[list[Album]] = relationship(back_populates="artist")

    @validates("name")
    def _keep_key(self, _attr: str, value: str) -> str:
        self.name_key = name_key(value)
        return value


class Album(Base):
    __tablename__ = "albums"
    __table_args__ = (
        UniqueConstraint("title", "artist_id"),
        # NULLs are distinct in a unique constraint, so artist-less albums need their own.
        Index(
            "uq_albums_title_no_artist",
            "title",
            unique=True,
            sqlite_where=text("artist_id IS NULL"),
            postgresql_where=text("artist_id IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(512))
    artist_id: Mapped[int | None] = mapped_column(ForeignKey("artists.id", ondelete="SET NULL"))
    year: Mapped[int | None]
    title_key: Mapped[str | None] = mapped_column(String(512), index=True, default=_key_of("title"))

    artist: Mapped[Artist | None] = relationship(back_populates="albums")
    tracks: Mapped[list[Track]] = relationship(back_populates="album")

    @validates("title")
    def _keep_key(self, _attr: str, value: str) -> str:
        self.title_key = name_key(value)
        return value


class Track(Base):
    __tablename__ = "tracks"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    file_size: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(512))
    artist_id: Mapped[int | None] = mapped_column(
        ForeignKey("artists.id", ondelete="SET NULL"), index=True
    )
    album_id: Mapped[int | None] = mapped_column(
        ForeignKey("albums.id", ondelete="SET NULL"), index=True
    )
    composer: Mapped[str | None] = mapped_column(String(512))
    track_number: Mapped[int | None]
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    sample_rate: Mapped[int] = mapped_column(Integer, default=0)
    channels: Mapped[int] = mapped_column(Integer, default=0)
    year: Mapped[int | None]
    licence: Mapped[str | None] = mapped_column(String(256))
    source: Mapped[str | None] = mapped_column(Text)
    attribution: Mapped[str | None] = mapped_column(Text)
    #: music21 corpus path for pieces rendered from a score (answers score questions).
    score_ref: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    title_key: Mapped[str | None] = mapped_column(String(512), index=True, default=_key_of("title"))

    artist: Mapped[Artist | None] = relationship(back_populates="tracks")
    album: Mapped[Album | None] = relationship(back_populates="tracks")
    tags: Mapped[list[Tag]] = relationship(
        back_populates="track", cascade="all, delete-orphan", passive_deletes=True
    )
    features: Mapped[AudioFeatures | None] = relationship(
        back_populates="track", cascade="all, delete-orphan", passive_deletes=True
    )
    embeddings: Mapped[list[Embedding]] = relationship(
        back_populates="track", cascade="all, delete-orphan", passive_deletes=True
    )

    @validates("title")
    def _keep_key(self, _attr: str, value: str) -> str:
        self.title_key = name_key(value)
        return value


class Tag(Base):
    """A label on a track: from the file, from the user, or from a model with a confidence."""

    __tablename__ = "tags"
    __table_args__ = (
        UniqueConstraint("track_id", "name", "origin"),
        Index("ix_tags_name", "name"),
        Index("ix_tags_kind", "kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(16), default="other")  # one of TAG_KINDS
    origin: Mapped[str] = mapped_column(String(16), default="file")  # one of TAG_ORIGINS
    confidence: Mapped[float] = mapped_column(Float, default=1.0)

    track: Mapped[Track] = relationship(back_populates="tags")


class AudioFeatures(Base):
    """What the ingest analysis measured; ``*_method`` names the algorithm used."""

    __tablename__ = "audio_features"
    track_id: Mapped[int] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True
    )
    tempo: Mapped[float | None]  # beats per minute
    tempo_confidence: Mapped[float | None]  # pulse clarity (catalog.analysis.tempo); v4
    tempo_method: Mapped[str | None] = mapped_column(String(128))
    key: Mapped[str | None] = mapped_column(String(4))  # tonic, e.g. "F#"
    mode: Mapped[str | None] = mapped_column(String(8))  # "major" / "minor"
    key_confidence: Mapped[float | None]
    key_method: Mapped[str | None] = mapped_column(String(128))
    loudness_db: Mapped[float | None]  # RMS level in dBFS
    loudness_lufs: Mapped[float | None]  # integrated loudness, ITU-R BS.1770-4 (LUFS); v4
    peak_db: Mapped[float | None]  # sample peak in dBFS
    silent: Mapped[bool] = mapped_column(default=False)
    analysed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    track: Mapped[Track] = relationship(back_populates="features")


class Embedding(Base):
    """A track's vector in some model's space; the model id says which."""

    __tablename__ = "embeddings"
    __table_args__ = (UniqueConstraint("track_id", "model_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(128), index=True)
    dim: Mapped[int]
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    track: Mapped[Track] = relationship(back_populates="embeddings")


class Playlist(Base):
    __tablename__ = "playlists"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    items: Mapped[list[PlaylistItem]] = relationship(
        back_populates="playlist",
        cascade="all, delete-orphan",
        order_by="PlaylistItem.position",
        passive_deletes=True,
    )


class PlaylistItem(Base):
    __tablename__ = "playlist_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    playlist_id: Mapped[int] = mapped_column(
        ForeignKey("playlists.id", ondelete="CASCADE"), index=True
    )
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]

    playlist: Mapped[Playlist] = relationship(back_populates="items")
    track: Mapped[Track] = relationship()


class PlayHistory(Base):
    __tablename__ = "play_history"
    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    played_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    source: Mapped[str | None] = mapped_column(String(64))  # "chat", "voice", "cli"
    #: How the play ended, as the player saw it: "completed", "skipped", or None (unknown).
    outcome: Mapped[str | None] = mapped_column(String(16))
    #: Seconds heard before it ended (None: unknown).
    seconds: Mapped[float | None] = mapped_column(Float)

    track: Mapped[Track] = relationship()
