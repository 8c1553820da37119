"""Questions every layer asks the catalog, answered once.

- ``library_stats``: what is in the library (counts, durations, licences).
- ``get_or_create_artist`` / ``get_or_create_album``: name rows for ingest,
  safe when two programs add the same name at once.
- ``track_rows``: tracks by id with what a reply shows already loaded.
- ``find_tracks``: the tracks a person means by a typed or spoken name, from
  the exact spelling down to a near miss, with suggestions when nothing fits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rapidfuzz import fuzz
from sqlalchemy import distinct, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from catalog.db import Catalog
from catalog.models import (
    Album,
    Artist,
    AudioFeatures,
    Embedding,
    PlayHistory,
    Playlist,
    Tag,
    Track,
)
from catalog.names import clean_name, fold, name_key

#: Longest name a row keeps (the columns are VARCHAR(512); PostgreSQL enforces it).
MAX_NAME = 512
#: ``name_score`` (0-100) from which a name counts as what the person meant.
FUZZY_MATCH = 85.0
#: ... and from which it is offered as "did you mean".
SUGGEST_MIN = 60.0
#: At most this many suggestions.
MAX_SUGGESTIONS = 3
#: Ids per ``IN (...)`` list: well under SQLite's limit on bound parameters.
_CHUNK = 500

Field = Literal["title", "artist", "album"]
MatchKind = Literal["exact", "case", "accent", "partial", "fuzzy"]
_KIND_RANK = {"exact": 0, "case": 1, "accent": 2, "partial": 3, "fuzzy": 4}


# ------------------------------------------------------------------ statistics


def duration_text(seconds: float) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour up."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _loudness_summary(track_list: list[dict[str, Any]]) -> dict[str, Any]:
    """Integrated loudness across the library: how many measured, range, loudest, quietest."""
    measured = [t for t in track_list if t["loudness_lufs"] is not None]
    if not measured:
        return {"measured": 0}
    ordered = sorted(measured, key=lambda t: (t["loudness_lufs"], t["id"]))
    levels = [t["loudness_lufs"] for t in ordered]

    def pick(t: dict[str, Any]) -> dict[str, Any]:
        return {"id": t["id"], "title": t["title"], "lufs": t["loudness_lufs"]}

    return {
        "measured": len(measured),
        "median_lufs": float(levels[len(levels) // 2]),
        "quietest": pick(ordered[0]),
        "loudest": pick(ordered[-1]),
    }


def library_stats(catalog: Catalog, top: int | None = None) -> dict[str, Any]:
    """Everything ``musicbert stats`` shows, as plain JSON-ready data.

    ``top`` limits the artist, album and tag lists to the largest entries
    (None: all of them); the per-track licence list is always complete.
    """
    with catalog.session() as s:
        tracks = s.scalar(select(func.count(Track.id))) or 0
        total = float(s.scalar(select(func.coalesce(func.sum(Track.duration), 0.0))) or 0.0)
        n_tracks = func.count(Track.id).label("n")
        seconds = func.coalesce(func.sum(Track.duration), 0.0).label("seconds")

        by_artist = [
            {"artist": name, "tracks": n, "duration": float(secs)}
            for name, n, secs in s.execute(
                select(Artist.name, n_tracks, seconds)
                .select_from(Track)
                .outerjoin(Artist, Track.artist_id == Artist.id)
                .group_by(Artist.id, Artist.name)
                .order_by(n_tracks.desc(), Artist.name.nulls_last())
                .limit(top)
            )
        ]
        album_artist = Artist.__table__.alias("album_artist")
        by_album = [
            {"album": title, "artist": artist, "tracks": n, "duration": float(secs)}
            for title, artist, n, secs in s.execute(
                select(Album.title, album_artist.c.name, n_tracks, seconds)
                .select_from(Track)
                .join(Album, Track.album_id == Album.id)
                .outerjoin(album_artist, Album.artist_id == album_artist.c.id)
                .group_by(Album.id, Album.title, album_artist.c.name)
                .order_by(n_tracks.desc(), Album.title, album_artist.c.name.nulls_last())
                .limit(top)
            )
        ]
        tag_tracks = func.count(distinct(Tag.track_id)).label("n")
        by_tag = [
            {"tag": name, "kind": kind, "tracks": n}
            for name, kind, n in s.execute(
                select(Tag.name, Tag.kind, tag_tracks)
                .group_by(Tag.name, Tag.kind)
                .order_by(tag_tracks.desc(), Tag.name, Tag.kind)
                .limit(top)
            )
        ]
        by_licence = [
            {
                "licence": licence,
                "source": source,
                "attribution": attribution,
                "tracks": n,
                "duration": float(secs),
            }  # fmt: skip
            for licence, source, attribution, n, secs in s.execute(
                select(Track.licence, Track.source, Track.attribution, n_tracks, seconds)
                .group_by(Track.licence, Track.source, Track.attribution)
                .order_by(
                    n_tracks.desc(),
                    Track.licence.nulls_last(),
                    Track.source.nulls_last(),
                    Track.attribution.nulls_last(),
                )
            )
        ]
        track_list = [
            {
                "id": t.id,
                "title": t.title,
                "artist": t.artist.name if t.artist else None,
                "album": t.album.title if t.album else None,
                "duration": t.duration,
                "licence": t.licence,
                "source": t.source,
                "attribution": t.attribution,
                "path": t.path,
                "loudness_lufs": t.features.loudness_lufs if t.features else None,
                "tempo": t.features.tempo if t.features else None,
                "key": (
                    f"{t.features.key} {t.features.mode}" if t.features and t.features.key else None
                ),
                "key_confidence": t.features.key_confidence if t.features else None,
            }
            for t in s.scalars(
                select(Track)
                .options(
                    joinedload(Track.artist), joinedload(Track.album), joinedload(Track.features)
                )
                .outerjoin(Artist, Track.artist_id == Artist.id)
                .outerjoin(Album, Track.album_id == Album.id)
                .order_by(
                    Artist.name.nulls_last(),
                    Album.title.nulls_last(),
                    Track.track_number.nulls_last(),
                    Track.title,
                    Track.id,
                )
            )
        ]
        return {
            "database": catalog.display_url,
            "tracks": tracks,
            "artists": s.scalar(select(func.count(Artist.id))) or 0,
            "albums": s.scalar(select(func.count(Album.id))) or 0,
            "tags": s.scalar(select(func.count(distinct(Tag.name)))) or 0,
            "tag_rows_by_origin": dict(
                s.execute(select(Tag.origin, func.count(Tag.id)).group_by(Tag.origin)).all()
            ),
            "total_duration": total,
            "total_duration_text": duration_text(total),
            "analysed": s.scalar(select(func.count(AudioFeatures.track_id))) or 0,
            "loudness": _loudness_summary(track_list),
            "embeddings": dict(
                s.execute(
                    select(Embedding.model_id, func.count(Embedding.id)).group_by(
                        Embedding.model_id
                    )
                ).all()
            ),
            "playlists": s.scalar(select(func.count(Playlist.id))) or 0,
            "plays": s.scalar(select(func.count(PlayHistory.id))) or 0,
            "by_artist": by_artist,
            "by_album": by_album,
            "by_tag": by_tag,
            "by_licence": by_licence,
            "track_list": track_list,
        }


# ------------------------------------------------------------- name rows


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    cleaned = clean_name(str(value))[:MAX_NAME].strip()
    return cleaned or None


def _insert_ignoring_duplicates(session: Session, model: type, values: dict, **conflict) -> None:
    """INSERT that does nothing when a unique index already holds the row.

    SQLite and PostgreSQL say so in SQL (ON CONFLICT DO NOTHING: a concurrent
    writer's row makes ours a no-op); elsewhere a savepoint absorbs the error.
    """
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        session.execute(insert(model).values(**values).on_conflict_do_nothing(**conflict))
        return
    try:
        with session.begin_nested():
            session.add(model(**values))
    except IntegrityError:
        pass


def get_or_create_artist(session: Session, name: str | None) -> Artist | None:
    """The artist row of this name (spacing tidied), created when missing; None for no name."""
    name = _name(name)
    if name is None:
        return None
    query = select(Artist).where(Artist.name == name)
    artist = session.scalar(query)
    if artist is None:
        _insert_ignoring_duplicates(
            session,
            Artist,
            {"name": name, "name_key": name_key(name)},
            index_elements=["name"],
        )
        artist = session.scalar(query)
    return artist


def get_or_create_album(
    session: Session, title: str | None, artist: Artist | None, year: int | None = None
) -> Album | None:
    """The album of this title by this artist (or by no artist), created when missing.

    A year is filled in when the album had none; None when there is no title.
    """
    title = _name(title)
    if title is None:
        return None
    if artist is not None and artist.id is None:
        session.flush()
    artist_id = artist.id if artist is not None else None
    query = select(Album).where(
        Album.title == title,
        Album.artist_id == artist_id if artist_id is not None else Album.artist_id.is_(None),
    )
    album = session.scalar(query)
    if album is None:
        if artist_id is None:
            conflict = {"index_elements": ["title"], "index_where": Album.artist_id.is_(None)}
        else:
            conflict = {"index_elements": ["title", "artist_id"]}
        values = {"title": title, "title_key": name_key(title), "artist_id": artist_id}
        _insert_ignoring_duplicates(session, Album, {**values, "year": year}, **conflict)
        album = session.scalar(query)
    if album is not None and album.year is None and year is not None:
        album.year = year
    return album


# ------------------------------------------------------------------ tracks


def track_rows(catalog: Catalog, ids: Iterable[int], session: Session | None = None) -> list[Track]:
    """Tracks in the order of ``ids`` (repeats and unknown ids dropped).

    Artist, album (with its artist), audio features and tags are loaded, so the
    rows can be read after the session is gone; other relations are not.
    Pass a session to keep the rows attached to it.
    """
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        return []
    options = (
        joinedload(Track.artist),
        joinedload(Track.album).joinedload(Album.artist),
        joinedload(Track.features),
        selectinload(Track.tags),
    )

    def load(s: Session) -> dict[int, Track]:
        found: dict[int, Track] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            query = select(Track).where(Track.id.in_(chunk)).options(*options)
            found.update((t.id, t) for t in s.scalars(query).unique())
        return found

    if session is not None:
        found = load(session)
    else:
        with catalog.session() as own:
            found = load(own)
    return [found[i] for i in wanted if i in found]


# ------------------------------------------------------------------- names


@dataclass(frozen=True)
class NameMatch:
    """One name in the catalog that fits what was asked, and its tracks."""

    name: str
    kind: MatchKind
    score: float  # 100 for exact, case and accent matches; ``name_score`` otherwise
    track_ids: list[int]


@dataclass
class NameMatches:
    """What a name means in the catalog: matches best first, or suggestions."""

    query: str
    field: Field
    matches: list[NameMatch] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.matches)

    @property
    def kind(self) -> MatchKind | None:
        """How the best match fits ("exact" ... "fuzzy"), None when nothing did."""
        return self.matches[0].kind if self.matches else None

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.matches]

    @property
    def track_ids(self) -> list[int]:
        """Tracks of every match, best match first, each once."""
        return list(dict.fromkeys(i for m in self.matches for i in m.track_ids))


def _name_rows(session: Session, fld: Field, key: str | None = None) -> list[tuple]:
    """(name, track id, album id, track number) rows of a field, optionally one key only."""
    extra = (Track.id, Track.album_id, Track.track_number)
    if fld == "title":
        query = select(Track.title, *extra)
        key_column = Track.title_key
    elif fld == "artist":
        query = select(Artist.name, *extra).join(Artist, Track.artist_id == Artist.id)
        key_column = Artist.name_key
    else:
        query = select(Album.title, *extra).join(Album, Track.album_id == Album.id)
        key_column = Album.title_key
    if key is not None:
        query = query.where(key_column == key)
    return list(session.execute(query))


def _grouped(rows: Sequence[tuple]) -> dict[str, list[int]]:
    """name -> track ids in album order (album, track number, id)."""
    ordered = sorted(
        rows,
        key=lambda r: (r[2] is None, r[2] or 0, r[3] is None, r[3] or 0, r[1]),
    )
    groups: dict[str, list[int]] = defaultdict(list)
    for name, track_id, *_ in ordered:
        groups[name].append(track_id)
    return groups


def name_score(query_folded: str, name_folded: str) -> float:
    """How close a typed name is to a catalog name (both folded), 0-100.

    The whole names are compared, and the query against each run of about as
    many words in the longer name ("bethoven" against "beethoven" inside
    "ludwig van beethoven"), that second score lowered a little. Unlike
    rapidfuzz's WRatio this does not call "a" a 90% match for "halo".
    """
    best = fuzz.ratio(query_folded, name_folded)
    words = name_folded.split()
    size = len(query_folded.split())
    for width in {max(1, size - 1), size, size + 1}:
        for start in range(0, max(0, len(words) - width) + 1):
            window = " ".join(words[start : start + width])
            best = max(best, 0.95 * fuzz.ratio(query_folded, window))
    return best


def _key_kind(query: str, name: str) -> MatchKind:
    if name == query:
        return "exact"
    if name.casefold() == query.casefold():
        return "case"
    return "accent"


def find_tracks(catalog: Catalog, name: str, field: Field = "title") -> NameMatches:
    """The tracks whose title, artist or album is ``name``, as near as the catalog has it.

    Tried in order, stopping at the first that finds something: the same name
    up to case, accents and punctuation (through the indexed name key: exact,
    case and accent matches); the same letters with spaces ignored ("acdc");
    the words of ``name`` inside a longer name ("moonlight" in "Moonlight
    Sonata"); then spelling mistakes (``name_score`` >= FUZZY_MATCH). When
    only spelling mistakes or nothing fit, ``suggestions`` lists other close
    names.
    """
    if field not in ("title", "artist", "album"):
        raise ValueError(f"field must be 'title', 'artist' or 'album', not {field!r}")
    query = clean_name(name)
    result = NameMatches(query=query, field=field)
    if not query:
        return result
    key = name_key(query)
    with catalog.session() as s:
        groups = _grouped(_name_rows(s, field, key))
        if groups:
            result.matches = sorted(
                (NameMatch(n, _key_kind(query, n), 100.0, ids) for n, ids in groups.items()),
                key=lambda m: (_KIND_RANK[m.kind], m.name),
            )
            return result
        groups = _grouped(_name_rows(s, field))
    if not groups:
        return result
    folded = {n: name_key(n) or "" for n in groups}

    compact = key.replace(" ", "")
    same_letters = [n for n, k in folded.items() if k.replace(" ", "") == compact]
    if same_letters:
        result.matches = [NameMatch(n, "accent", 100.0, groups[n]) for n in sorted(same_letters)]
        return result

    if len(compact) >= 3:
        padded = f" {key} "
        inside = [n for n, k in folded.items() if padded in f" {k} "]
        if inside:
            inside.sort(key=lambda n: (len(folded[n]), n))
            result.matches = [
                NameMatch(n, "partial", round(name_score(key, folded[n]), 1), groups[n])
                for n in inside
            ]
            return result

    scored = sorted(
        ((name_score(key, k), n) for n, k in folded.items()),
        key=lambda item: (-item[0], len(item[1]), item[1]),
    )
    for score, candidate in scored:
        if score >= FUZZY_MATCH:
            result.matches.append(NameMatch(candidate, "fuzzy", round(score, 1), groups[candidate]))
        elif score >= SUGGEST_MIN and len(result.suggestions) < MAX_SUGGESTIONS:
            result.suggestions.append(candidate)
    return result


__all__ = [
    "FUZZY_MATCH",
    "NameMatch",
    "NameMatches",
    "duration_text",
    "find_tracks",
    "fold",
    "get_or_create_album",
    "get_or_create_artist",
    "library_stats",
    "name_score",
    "track_rows",
]
