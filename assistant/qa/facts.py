"""Catalog facts: who, which album, what year, how long, which licence, what is on an album."""

from __future__ import annotations

from assistant.qa.answer import Answer, dont_know
from assistant.qa.library import Snapshot, TrackInfo
from assistant.qa.text import format_duration, join_names

FACT_ATTRIBUTES = ("artist", "composer", "album", "year", "duration", "licence", "track_number")


def answer_fact(track: TrackInfo, attribute: str, snapshot: Snapshot) -> Answer:
    ids = [track.id]
    label = track.label
    if attribute == "artist":
        if not track.artist:
            return dont_know(
                "no_data", f"the library has no artist for {track.title}.", track_ids=ids
            )
        return Answer(f"{track.title} is by {track.artist}.", track.artist, track_ids=ids)
    if attribute == "composer":
        composer = track.composer
        if not composer:
            return dont_know(
                "no_data", f"the library names no composer for {label}.", track_ids=ids
            )
        return Answer(f"{label} was composed by {composer}.", composer, track_ids=ids)
    if attribute == "album":
        if not track.album:
            return dont_know(
                "no_data", f"{label} is not on any album in the library.", track_ids=ids
            )
        return Answer(f"{label} is on the album {track.album}.", track.album, track_ids=ids)
    if attribute == "year":
        if track.year is None:
            return dont_know("no_data", f"the library has no year for {label}.", track_ids=ids)
        return Answer(f"{label} is from {track.year}.", track.year, track_ids=ids)
    if attribute == "duration":
        if not track.duration:
            return dont_know("no_data", f"the library has no length for {label}.", track_ids=ids)
        return Answer(
            f"{label} is {format_duration(track.duration)} long ({track.duration:.0f} s).",
            round(track.duration, 1),
            track_ids=ids,
        )
    if attribute == "licence":
        if not track.licence:
            return dont_know("no_data", f"the files of {label} name no licence.", track_ids=ids)
        extra = f" Attribution: {track.attribution}." if track.attribution else ""
        return Answer(
            f"{label} is under the licence {track.licence}.{extra}", track.licence, track_ids=ids
        )
    if attribute == "track_number":
        if track.track_number is None:
            return dont_know("no_data", f"{label} has no track number.", track_ids=ids)
        return Answer(f"{label} is track {track.track_number}.", track.track_number, track_ids=ids)
    raise ValueError(f"not a catalog fact: {attribute}")


def answer_album_tracks(album: str, snapshot: Snapshot) -> Answer:
    tracks = snapshot.by_album(album)
    if not tracks:
        return dont_know("no_match", f"there are no tracks on an album called {album}.")
    tracks.sort(key=lambda t: (t.track_number is None, t.track_number or 0, t.title.casefold()))
    titles = [t.title for t in tracks]
    return Answer(
        f"{album} has {len(tracks)} tracks in the library: {join_names(titles, 20)}.",
        titles,
        track_ids=[t.id for t in tracks],
    )
