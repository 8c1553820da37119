"""What was played, from the play history (``PlayHistory``: one row per track started).

* ``most_played(since, until)``: the tracks played most in a time window ("my most
  played this month");
* ``played_in(since, until)``: the tracks played in a window, latest first ("what I
  played yesterday");
* ``not_played_lately(days)``: tracks played before but not in the last ``days`` days,
  most played first ("something I haven't played in a while"); never-played tracks
  follow when asked for.

Windows are parsed from words by ``window("this month")`` -> (since, until) in UTC.

The player reports how each track ended (``record_outcome``: "completed" when it ran to
its end, "skipped" on next()); ``taste`` turns that into the tracks liked (completed more
often than skipped) and the ones skipped, which recommendations lean towards and avoid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select

from catalog.models import PlayHistory, Track


@dataclass
class PlayedTrack:
    track_id: int
    plays: int
    last_played: datetime | None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # the catalog stores naive UTC


def window(words: str, now: datetime | None = None) -> tuple[datetime, datetime] | None:
    """(since, until) for "today", "yesterday", "this/last week|month|year", "in the last
    N days|weeks|months"; None when the words name no window."""
    now = now or _now()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    text = words.lower()
    m = re.search(
        r"\b(?:last|past)\s+(\d+|two|three|four|five|six|seven)\s+(day|week|month)s?\b", text
    )
    if m:
        n = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}.get(m.group(1))
        n = n or int(m.group(1))
        unit = {"day": 1, "week": 7, "month": 30}[m.group(2)]
        return now - timedelta(days=n * unit), now
    if re.search(r"\btoday\b|\btonight\b|\bthis morning\b", text):
        return day, now
    if re.search(r"\byesterday\b", text):
        return day - timedelta(days=1), day
    if re.search(r"\bthis week\b", text):
        return day - timedelta(days=day.weekday()), now
    if re.search(r"\blast week\b", text):
        start = day - timedelta(days=day.weekday() + 7)
        return start, start + timedelta(days=7)
    if re.search(r"\bthis month\b", text):
        return day.replace(day=1), now
    if re.search(r"\blast month\b", text):
        end = day.replace(day=1)
        return (end - timedelta(days=1)).replace(day=1), end
    if re.search(r"\bthis year\b", text):
        return day.replace(month=1, day=1), now
    if re.search(r"\blast year\b", text):
        end = day.replace(month=1, day=1)
        return end.replace(year=end.year - 1), end
    return None


def most_played(
    catalog, since: datetime | None = None, until: datetime | None = None, limit: int = 10
) -> list[PlayedTrack]:
    """Tracks by number of plays in the window, most first (ties: latest played first)."""
    plays = func.count(PlayHistory.id)
    last = func.max(PlayHistory.played_at)
    q = select(PlayHistory.track_id, plays, last).group_by(PlayHistory.track_id)
    if since is not None:
        q = q.where(PlayHistory.played_at >= since)
    if until is not None:
        q = q.where(PlayHistory.played_at < until)
    q = q.order_by(plays.desc(), last.desc(), PlayHistory.track_id).limit(limit)
    with catalog.session() as s:
        return [PlayedTrack(t, int(n), d) for t, n, d in s.execute(q)]


def played_in(
    catalog, since: datetime | None, until: datetime | None = None, limit: int = 10
) -> list[PlayedTrack]:
    """Tracks played in the window, the latest played first, each once."""
    last = func.max(PlayHistory.played_at)
    q = select(PlayHistory.track_id, func.count(PlayHistory.id), last)
    if since is not None:
        q = q.where(PlayHistory.played_at >= since)
    if until is not None:
        q = q.where(PlayHistory.played_at < until)
    q = q.group_by(PlayHistory.track_id).order_by(last.desc()).limit(limit)
    with catalog.session() as s:
        return [PlayedTrack(t, int(n), d) for t, n, d in s.execute(q)]


def not_played_lately(
    catalog, days: float = 30, limit: int = 10, include_never: bool = False
) -> list[PlayedTrack]:
    """Tracks whose last play is older than ``days`` days, most played first; then, with
    ``include_never``, tracks never played (in catalog order)."""
    cutoff = _now() - timedelta(days=days)
    plays = func.count(PlayHistory.id)
    last = func.max(PlayHistory.played_at)
    q = (
        select(PlayHistory.track_id, plays, last)
        .group_by(PlayHistory.track_id)
        .having(last < cutoff)
        .order_by(plays.desc(), last)
        .limit(limit)
    )
    with catalog.session() as s:
        out = [PlayedTrack(t, int(n), d) for t, n, d in s.execute(q)]
        if include_never and len(out) < limit:
            played = select(PlayHistory.track_id).distinct()
            never = s.scalars(
                select(Track.id).where(Track.id.not_in(played)).order_by(Track.id)
                .limit(limit - len(out))
            )  # fmt: skip
            out += [PlayedTrack(t, 0, None) for t in never]
    return out


# --------------------------------------------------------------------------- outcomes


def record_outcome(
    catalog, track_id: int, outcome: str, seconds: float | None = None, source: str = "player"
) -> None:
    """Note how a play ended ("completed" / "skipped"): on the track's latest play if that
    one has no outcome yet and started within the time heard (plus a minute), else as a
    new play that started ``seconds`` ago (a queue plays on after its first track)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
    now = _now()
    heard = timedelta(seconds=float(seconds or 0.0))
    with catalog.session() as s:
        latest = s.scalars(
            select(PlayHistory)
            .where(PlayHistory.track_id == track_id)
            .order_by(PlayHistory.played_at.desc())
            .limit(1)
        ).first()
        if (
            latest is not None
            and latest.outcome is None
            and latest.played_at >= now - heard - timedelta(seconds=60)
        ):
            latest.outcome, latest.seconds = outcome, seconds
        else:
            s.add(
                PlayHistory(
                    track_id=track_id,
                    played_at=now - heard,
                    source=source,
                    outcome=outcome,
                    seconds=seconds,
                )
            )


OUTCOMES = ("completed", "skipped")


@dataclass
class Taste:
    """What the play history says about liking: tracks played to the end more often than
    skipped (``liked``, most completions first) and skipped more often than completed."""

    liked: list[int]
    skipped: list[int]


def taste(catalog, limit: int = 20) -> Taste:
    done = func.sum(case((PlayHistory.outcome == "completed", 1), else_=0))
    skip = func.sum(case((PlayHistory.outcome == "skipped", 1), else_=0))
    q = (
        select(PlayHistory.track_id, done, skip)
        .where(PlayHistory.outcome.is_not(None))
        .group_by(PlayHistory.track_id)
    )
    with catalog.session() as s:
        rows = [(t, int(d or 0), int(k or 0)) for t, d, k in s.execute(q)]
    liked = [t for t, d, k in sorted(rows, key=lambda r: (-r[1], r[2], r[0])) if d > k][:limit]
    skipped = [t for t, d, k in sorted(rows, key=lambda r: (-r[2], r[0])) if k > d]
    return Taste(liked, skipped)
