"""Catalog facts: who, which album, what year, how long, which licence, what is on an album."""

from __future__ import annotations

from assistant.qa.answer import Answer, dont_know
from assistant.qa.library import Snapshot, TrackInfo
from assistant.qa.text import format_duration, join_names

FACT_ATTRIBUTES = ("artist", "composer", "album", "year", "duration", "licence", "track_number")
#: What a plain fact's answer says when the library lacks it, and when it has it
#: ({title}, {label}: the track; {value}: the fact).
_SAID = {
    "artist": ("the library has no artist for {title}.", "{title} is by {value}."),
    "composer": ("the library names no composer for {label}.", "{label} was composed by {value}."),
    "album": ("{label} is not on any album in the library.", "{label} is on the album {value}."),
    "year": ("the library has no year for {label}.", "{label} is from {value}."),
    "track_number": ("{label} has no track number.", "{label} is track {value}."),
}


def answer_fact(track: TrackInfo, attribute: str, snapshot: Snapshot) -> Answer:
    ids = [track.id]
    label = track.label
    if attribute in _SAID:
        value = getattr(track, attribute)
        missing, said = _SAID[attribute]
        words = {"title": track.title, "label": label, "value": value}
        if value is None or value == "":
            return dont_know("no_data", missing.format(**words), track_ids=ids)
        return Answer(said.format(**words), value, track_ids=ids)
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
