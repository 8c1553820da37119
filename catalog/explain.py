"""Why a track was returned: the tags and attributes that matched, in a person's words.

A vector score alone says nothing a listener can check. These helpers compare a
track's stored facts (tags with their origin and confidence, tempo, key, year,
duration, licence) with what was asked (query words and filters) or with the
seed tracks of a "similar"/"mix" request, and say which ones agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from catalog.filters import SearchFilters
from catalog.models import Tag, Track
from musicbert.tagger import trusted
from musicbert.vocabulary import tags_in

#: Query words that ask for a tempo, and the range they mean (bpm).
TEMPO_WORDS: dict[str, tuple[float, float, str]] = {
    "slow": (0, 95, "slow"),
    "calm": (0, 95, "slow"),
    "relaxed": (0, 95, "slow"),
    "relaxing": (0, 95, "slow"),
    "chill": (0, 100, "slow"),
    "fast": (120, 400, "fast"),
    "upbeat": (115, 400, "fast"),
    "energetic": (115, 400, "fast"),
    "dance": (110, 400, "fast"),
    "danceable": (110, 400, "fast"),
}
_WORD = re.compile(r"[a-z0-9]+")


def fold_words(text: str) -> list[str]:
    """Lower-case ASCII-ish words of a text (accents and punctuation dropped)."""
    from catalog.names import fold

    return _WORD.findall(fold(text))


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def query_phrases(text: str) -> set[str]:
    """Word n-grams (1-3) of a query in three spellings: "hip hop", "hiphop", "hip-hop"."""
    words = [_stem(w) for w in fold_words(text)]
    phrases: set[str] = set()
    for n in (1, 2, 3):
        for i in range(len(words) - n + 1):
            gram = words[i : i + n]
            phrases.update({" ".join(gram), "".join(gram), "-".join(gram)})
    return phrases


def tag_phrase(name: str) -> str:
    return " ".join(_stem(w) for w in fold_words(name))


def describe_tag(tag: Tag) -> str:
    if tag.origin == "model":
        return f"tag: {tag.name} (model {tag.confidence:.2f})"
    return f"tag: {tag.name} ({tag.origin})"


def mmss(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _range(low: float | None, high: float | None, fmt=lambda v: f"{v:g}") -> str:
    if low is not None and high is not None:
        return f"{fmt(low)}-{fmt(high)}"
    return f">= {fmt(low)}" if low is not None else f"<= {fmt(high)}"


def best_tags(track: Track) -> dict[str, Tag]:
    """One tag per phrase: the file/user one if any, else the most confident model one."""
    best: dict[str, Tag] = {}
    for tag in track.tags:
        key = tag_phrase(tag.name)
        held = best.get(key)
        if held is None or (held.origin == "model" and tag.origin != "model"):
            best[key] = tag
        elif held.origin == tag.origin and tag.confidence > held.confidence:
            best[key] = tag
    return best


def track_year(track: Track) -> int | None:
    return track.year if track.year is not None else (track.album.year if track.album else None)


def explain_query(track: Track, text: str | None, filters: SearchFilters | None) -> list[str]:
    """Reasons for a text search hit: tags named in the query, then each filter that held."""
    why: list[str] = []
    tags = best_tags(track)
    wanted = query_phrases(text) if text else set()
    if filters is not None:
        for name in filters.tag_list():
            wanted.add(tag_phrase(name))
    named = tags_in(text) if text else set()  # "rap" names the tag "hip-hop"
    for phrase, tag in tags.items():
        if phrase in wanted or (named and named & tags_in(tag.name)):
            why.append(describe_tag(tag))
    features = track.features
    tempo_filtered = filters is not None and (
        filters.tempo_min is not None or filters.tempo_max is not None
    )
    if text and features is not None and features.tempo and not tempo_filtered:
        for word in set(fold_words(text)) & TEMPO_WORDS.keys():
            low, high, label = TEMPO_WORDS[word]
            if low <= features.tempo <= high:
                why.append(f"tempo {features.tempo:.0f} bpm ({label})")
                break
    key_filtered = filters is not None and bool(filters.key or filters.mode)
    if text and features is not None and features.mode and not key_filtered:
        if features.mode in fold_words(text):
            why.append(f"key {features.key} {features.mode}")
    if filters is not None:
        why.extend(explain_filters(track, filters))
    return _unique(why)


def explain_filters(track: Track, filters: SearchFilters) -> list[str]:
    why: list[str] = []
    if filters.artist and track.artist:
        why.append(f"artist: {track.artist.name}")
    if filters.album and track.album:
        why.append(f"album: {track.album.title}")
    year = track_year(track)
    if (filters.year_min is not None or filters.year_max is not None) and year is not None:
        why.append(f"year {year} in {_range(filters.year_min, filters.year_max, str)}")
    features = track.features
    if (filters.tempo_min is not None or filters.tempo_max is not None) and features:
        if features.tempo is not None:
            span = _range(filters.tempo_min, filters.tempo_max, lambda v: f"{v:g}")
            why.append(f"tempo {features.tempo:.0f} bpm in {span}")
    if (filters.key or filters.mode) and features and features.key:
        why.append(f"key {features.key} {features.mode or ''}".rstrip())
    if filters.duration_min is not None or filters.duration_max is not None:
        span = _range(filters.duration_min, filters.duration_max, mmss)
        why.append(f"duration {mmss(track.duration)} in {span}")
    if filters.licence and track.licence:
        why.append(f"licence: {track.licence}")
    return why


def explain_likeness(track: Track, seeds: Iterable[Track]) -> list[str]:
    """Reasons for a "similar"/"mix" hit: what it shares with the seed tracks."""
    seeds = list(seeds)
    why: list[str] = []
    mine = best_tags(track)
    shared = [mine[p] for p in mine if any(p in best_tags(seed) for seed in seeds)]
    shared.sort(key=lambda t: (t.origin == "model", -t.confidence))
    if shared:
        why.append("shares tags: " + ", ".join(t.name for t in shared[:4]))
    if track.artist and any(seed.artist_id == track.artist_id for seed in seeds):
        why.append(f"same artist: {track.artist.name}")
    features = track.features
    if features is not None and features.tempo:
        for seed in seeds:
            if seed.features and seed.features.tempo:
                if abs(seed.features.tempo - features.tempo) <= 8:
                    why.append(
                        f"tempo {features.tempo:.0f} bpm, close to {seed.title!r}"
                        f" ({seed.features.tempo:.0f})"
                    )
                    break
    if features is not None and features.key:
        for seed in seeds:
            if seed.features and (seed.features.key, seed.features.mode) == (
                features.key,
                features.mode,
            ):
                why.append(f"same key as {seed.title!r}: {features.key} {features.mode or ''}")
                break
    return _unique(why)


def fallback_reason(track: Track) -> list[str]:
    """When nothing named matched: the model's own strongest tags for the track."""
    model = sorted(
        (t for t in track.tags if t.origin == "model" and trusted(t.name, t.confidence)),
        key=lambda t: -t.confidence,
    )
    if model:
        return ["sounds like: " + ", ".join(f"{t.name} ({t.confidence:.2f})" for t in model[:3])]
    return ["closest in the MusicBERT space"]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(item.strip() for item in items))


__all__ = [
    "TEMPO_WORDS",
    "describe_tag",
    "explain_filters",
    "explain_likeness",
    "explain_query",
    "fallback_reason",
    "mmss",
    "query_phrases",
]
