"""Which tracks: the one filter type that search, the dialogue and QA share.

A person narrows a request by artist, album, composer, tags, years, tempo, key,
length or licence ("calm, by Maxstack, under 4 minutes"). ``SearchFilters``
holds such a request; ``filtered_ids`` answers it in SQL (search, and the
dialogue when a library has no vectors yet), ``SearchFilters.matches`` answers
it over the facts QA has already loaded (where a file's declared tempo and key
win over the audio estimate), and ``describe`` says it back in words. The same
rules hold in all three: names compare folded (``catalog.names.fold``), keys by
pitch class (``catalog.keys``), years fall back to the album's year.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from catalog.keys import KeyNameError, key_spellings, parse_key, pitch_class
from catalog.models import Album, Artist, AudioFeatures, Tag, Track
from catalog.names import fold
from catalog.queries import duration_text
from musicbert.errors import MusicBertError


class SearchError(MusicBertError):
    """A search request that cannot be run as given (bad k, range or key)."""


def _number(text: str, clock: bool) -> float:
    text = text.strip()
    if clock and ":" in text:
        minutes, _, seconds = text.partition(":")
        return float(minutes) * 60 + float(seconds)
    return float(text)


def parse_range(text: str, *, clock: bool = False) -> tuple[float | None, float | None]:
    """(low, high) from "60-90", "60-", "-90" or "90" (both ends); "1:00-5:00" with clock."""
    text = (text or "").strip()
    try:
        if "-" in text.lstrip("-") or text.startswith("-"):
            low_text, _, high_text = (
                text.rpartition("-") if text.startswith("-") else (text.partition("-"))
            )
            low = _number(low_text, clock) if low_text.strip() else None
            high = _number(high_text, clock) if high_text.strip() else None
        else:
            low = high = _number(text, clock)
    except ValueError:
        raise SearchError(f"cannot read the range {text!r}; write it like 60-90") from None
    if low is None and high is None:
        raise SearchError(f"the range {text!r} has no bounds; write it like 60-90")
    if low is not None and high is not None and low > high:
        raise SearchError(f"the range {text!r} goes downwards; write the smaller number first")
    return low, high


class TrackFacts(Protocol):
    """What ``SearchFilters.matches`` reads of a track (QA's ``TrackInfo`` has it all)."""

    artist: str | None
    album: str | None
    composer: str | None
    year: int | None
    tempo: float | None
    key: str | None
    mode: str | None
    duration: float | None
    licence: str | None
    score_ref: str | None

    @property
    def tag_names(self) -> list[str]: ...


#: Fields that leave tracks out rather than describe the ones wanted.
_EXCLUSIONS = ("exclude_ids", "exclude_recent")


@dataclass
class SearchFilters:
    """Conditions a result must meet; None means "any". Ranges are inclusive."""

    artist: str | None = None
    album: str | None = None
    composer: str | None = None
    #: One tag or several (all must be present).
    tag: str | list[str] | None = None
    #: Years of the track, or of its album where the track has none.
    year_min: int | None = None
    year_max: int | None = None
    tempo_min: float | None = None
    tempo_max: float | None = None
    #: Tonic ("F#", "Bb") or a whole key ("F# minor"); enharmonic spellings are equal.
    key: str | None = None
    mode: str | None = None
    duration_min: float | None = None
    duration_max: float | None = None
    licence: str | None = None
    #: Only tracks rendered from a score (they carry a score reference).
    scores_only: bool = False
    exclude_ids: set[int] = field(default_factory=set)
    #: Leave out the tracks among the last N plays (play history).
    exclude_recent: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, Any], exclude_ids: Iterable[int] = ()) -> SearchFilters:
        """Filters from their plain form (a dialogue's slots); unknown keys are ignored."""
        known = {f.name for f in fields(cls)} - set(_EXCLUSIONS)
        return cls(**{k: v for k, v in values.items() if k in known}, exclude_ids=set(exclude_ids))

    def to_dict(self) -> dict[str, Any]:
        """The conditions that are set, as plain values (exclusions left out)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in _EXCLUSIONS and getattr(self, f.name) not in (None, "", [], False)
        }

    def tag_list(self) -> list[str]:
        if not self.tag:
            return []
        return [self.tag] if isinstance(self.tag, str) else list(self.tag)

    def key_and_mode(self) -> tuple[str | None, str | None]:
        try:
            tonic, mode = parse_key(self.key) if self.key else (None, None)
            given = parse_key(self.mode)[1] if self.mode else None
        except KeyNameError as exc:
            raise SearchError(str(exc)) from None
        if self.mode:
            if given is None:
                raise SearchError(f"the mode {self.mode!r} is neither major nor minor")
            if mode and given != mode:
                raise SearchError(f"key {self.key!r} and mode {self.mode!r} disagree")
            mode = given
        return tonic, mode

    def narrows(self) -> bool:
        """Whether any condition besides the exclusions is set."""
        return any(
            getattr(self, f.name) not in (None, "", [], False)
            for f in fields(self)
            if f.name not in _EXCLUSIONS
        )

    def check(self) -> None:
        for low, high, what in (
            (self.year_min, self.year_max, "year"),
            (self.tempo_min, self.tempo_max, "tempo"),
            (self.duration_min, self.duration_max, "duration"),
        ):
            if low is not None and high is not None and low > high:
                raise SearchError(f"the {what} range {low:g}-{high:g} is empty (min > max)")
        if self.exclude_recent < 0:
            raise SearchError("exclude_recent must be 0 or more")
        self.key_and_mode()

    def describe(self) -> str:
        """The conditions in words: "by Maxstack, tagged piano, between 60 and 90 BPM"."""
        parts = []
        if self.artist:
            parts.append(f"by {self.artist}")
        if self.composer:
            parts.append(f"composed by {self.composer}")
        if self.album:
            parts.append(f"on {self.album}")
        tags = self.tag_list()
        if tags:
            parts.append("tagged " + " and ".join(tags))
        if self.year_min is not None or self.year_max is not None:
            parts.append(_years_words(self.year_min, self.year_max))
        parts.extend(
            _range_words(low, high, unit, fmt)
            for low, high, unit, fmt in (
                (self.tempo_min, self.tempo_max, " BPM", lambda v: f"{v:.0f}"),
                (self.duration_min, self.duration_max, "", lambda v: duration_text(v)),
            )
            if low is not None or high is not None
        )
        tonic, mode = self.key_and_mode()
        if tonic:
            parts.append(f"in {tonic} {mode or ''}".rstrip())
        elif mode:
            parts.append(f"in a {mode} key")
        if self.licence:
            parts.append(f"with licence {self.licence}")
        if self.scores_only:
            parts.append("rendered from scores")
        return " ".join(parts) or "any track"

    def matches(self, t: TrackFacts) -> bool:
        """Whether a track whose facts are already loaded meets every condition."""
        if self.artist and fold(t.artist or "") != fold(self.artist):
            return False
        if self.album and fold(t.album or "") != fold(self.album):
            return False
        if self.composer and fold(t.composer or "") != fold(self.composer):
            return False
        wanted_tags = {fold(x) for x in self.tag_list()}
        if wanted_tags and not wanted_tags <= {fold(x) for x in t.tag_names}:
            return False
        tonic, mode = self.key_and_mode()
        if tonic and pitch_class(t.key) != pitch_class(tonic):
            return False
        if mode and t.mode != mode:
            return False
        if self.licence and fold(self.licence) not in fold(t.licence or ""):
            return False
        if self.scores_only and not t.score_ref:
            return False
        return all(
            low is None and high is None or _within(value, low, high)
            for value, low, high in (
                (t.year, self.year_min, self.year_max),
                (t.tempo, self.tempo_min, self.tempo_max),
                (t.duration, self.duration_min, self.duration_max),
            )
        )


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    if value is None:
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def _range_words(low, high, unit: str, fmt) -> str:
    if low is not None and high is not None:
        if low == high:
            return f"at {fmt(low)}{unit}"
        return f"between {fmt(low)} and {fmt(high)}{unit}"
    return f"above {fmt(low)}{unit}" if low is not None else f"below {fmt(high)}{unit}"


def _years_words(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        if low == high:
            return f"from {low}"
        if low % 10 == 0 and high == low + 9:
            return f"from the {low}s"
        return f"from {low} to {high}"
    return f"from {low} on" if low is not None else f"up to {high}"


# --------------------------------------------------------------------------- SQL


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _name_condition(session: Session, name_col, key_col, name: str):
    """A folded name equal to the one asked for when one is; else a name containing it.

    "Bach" means the artist "Bach" when there is one, not also "C.P.E. Bach";
    "max" typed on the command line still finds "Maxstack".
    """
    key = fold(name)
    if key and session.scalar(select(key_col).where(key_col == key).limit(1)) is not None:
        return key_col == key
    return or_(
        name_col.ilike(_like(name), escape="\\"),
        key_col.like(_like(key), escape="\\"),
    )


def _tag_spellings(session: Session, names: list[str]) -> list[list[str]]:
    """For each tag asked for, the stored names equal to it once folded.

    Read from the index on ``tags.name`` (distinct names only), so the filter
    itself is an indexed equality rather than a function over every tag row.
    """
    if not names:
        return []
    by_key: dict[str, list[str]] = {}
    for name in session.scalars(select(Tag.name).distinct()):
        by_key.setdefault(fold(name), []).append(name)
    return [by_key.get(fold(n), [n]) for n in names]


def filter_query(session: Session, filters: SearchFilters) -> Select:
    """``SELECT tracks.id`` of the tracks meeting ``filters`` (exclusions not applied)."""
    # No join with the embeddings: touching those 1 KB rows would make every filtered
    # query read the vectors.
    query = select(Track.id)
    if filters.artist:
        query = query.join(Artist, Track.artist_id == Artist.id).where(
            _name_condition(session, Artist.name, Artist.name_key, filters.artist)
        )
    needs_album = filters.album or filters.year_min is not None or filters.year_max is not None
    if needs_album:
        query = query.outerjoin(Album, Track.album_id == Album.id)
    if filters.album:
        query = query.where(_name_condition(session, Album.title, Album.title_key, filters.album))
    if filters.composer:
        query = query.where(Track.composer.ilike(_like(filters.composer), escape="\\"))
    for spellings in _tag_spellings(session, filters.tag_list()):
        query = query.where(Track.id.in_(select(Tag.track_id).where(Tag.name.in_(spellings))))
    year = func.coalesce(Track.year, Album.year)
    if filters.year_min is not None:
        query = query.where(year >= filters.year_min)
    if filters.year_max is not None:
        query = query.where(year <= filters.year_max)
    tonic, mode = filters.key_and_mode()
    if filters.tempo_min is not None or filters.tempo_max is not None or tonic or mode:
        query = query.join(AudioFeatures, AudioFeatures.track_id == Track.id)
    if filters.tempo_min is not None:
        query = query.where(AudioFeatures.tempo >= filters.tempo_min)
    if filters.tempo_max is not None:
        query = query.where(AudioFeatures.tempo <= filters.tempo_max)
    if tonic:
        query = query.where(AudioFeatures.key.in_(key_spellings(tonic)))
    if mode:
        query = query.where(AudioFeatures.mode == mode)
    if filters.duration_min is not None:
        query = query.where(Track.duration >= filters.duration_min)
    if filters.duration_max is not None:
        query = query.where(Track.duration <= filters.duration_max)
    if filters.licence:
        query = query.where(Track.licence.ilike(_like(filters.licence), escape="\\"))
    if filters.scores_only:
        query = query.where(Track.score_ref.is_not(None))
    return query


def filtered_ids(session: Session, filters: SearchFilters) -> list[int]:
    """Ids of the tracks meeting ``filters`` and not excluded by id, in id order."""
    query = filter_query(session, filters)
    if filters.exclude_ids:
        query = query.where(Track.id.not_in(sorted(filters.exclude_ids)))
    return list(session.scalars(query.order_by(Track.id)))
