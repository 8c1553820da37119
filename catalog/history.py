"""What was played, from the play history (``PlayHistory``: one row per track started).

* ``most_played(since, until)``: the tracks played most in a time window ("my most
  played this month");
* ``played_in(since, until)``: the tracks played in a window, latest first ("what I
  played yesterday");
* ``not_played_lately(days)``: tracks played before but not in the last ``days`` days,
  most played first ("something I haven't played in a while"); never-played tracks
  follow when asked for.

Windows are parsed from words by ``window("this month")`` -> (since, until) in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

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
