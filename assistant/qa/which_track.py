"""Which track a question is about, and what to say when the library has no such name.

A question names a track ("how long is Nebula?"), leaves it to the conversation ("and
its key?"), or names something the library lacks ("who wrote Yesterday?", "how many
tracks by Radiohead?"). Finding the track, or the honest "I can't find" with close
names, is one job apart from answering the question (``assistant.qa.engine``).
"""

from __future__ import annotations

import re

from assistant.qa.answer import Answer, dont_know
from assistant.qa.library import Snapshot, TrackInfo
from assistant.qa.questions import Question
from assistant.qa.resolve import Gazetteer
from assistant.qa.text import join_names
from assistant.qa.wording import LABEL_WORDS, VOCABULARY
from catalog.names import fold

#: Words of a question that are not part of a name (for "no such track" suggestions).
_QUESTION_WORDS = set(
    """a an the is are was were what whats which who whom whose when how why where does do did
    of in on by for to it its this that and or me tell please about can you could would i know
    song track piece tune music album artist composer composed wrote written key tempo bpm
    long length duration year released licence license loud loudness fast slow there any
    have has with played play performs performed sound sounds like mood genre instruments
    measures bars time signature highest lowest note score many tracks songs from current
    playing now one ones same compare faster slower longer shorter louder quieter than
    everything something info details overview give picture summarize characterize more
    musically be called listening am whats other higher lower bigger smaller more less share
    versus vs""".split()
)

_FOLLOW_UP = re.compile(
    r"\b(it|its|it s|this|that|this one|that one|the track|the song|current|playing|now)\b"
)


def _did_you_mean(suggestions: list[str]) -> str:
    """How a "not found" sentence ends: "; did you mean A or B?", or "." with none."""
    return f"; did you mean {join_names(suggestions, conj='or')}?" if suggestions else "."


def _no_such_track(name: str, suggestions: list[str]) -> Answer:
    return dont_know(
        "no_track",
        f"there is no track called '{name}' in your library" + _did_you_mean(suggestions),
        suggestions=suggestions,
    )


def one_track(name: str, q: Question, gaz: Gazetteer) -> TrackInfo | Answer:
    """The one track called ``name`` (narrowed by the question's artist or album), or
    the answer that says there is none, or more than one."""
    res = gaz.resolve(name, "track")
    if not res.found:
        return _no_such_track(name, res.suggestions)
    tracks = res.tracks
    if len(tracks) > 1 and q.artist:
        narrowed = [t for t in tracks if (t.artist or "").casefold() == q.artist.casefold()]
        tracks = narrowed or tracks
    if len(tracks) > 1 and q.album:
        narrowed = [t for t in tracks if (t.album or "").casefold() == q.album.casefold()]
        tracks = narrowed or tracks
    if len(tracks) > 1:
        labels = [t.label for t in tracks]
        return dont_know(
            "ambiguous",
            f"{len(tracks)} tracks are called {res.name}: "
            f"{join_names(labels)}. Which one do you mean?",
            suggestions=labels,
            track_ids=[t.id for t in tracks],
        )
    return tracks[0]


def track_for(
    q: Question, snap: Snapshot, gaz: Gazetteer, current_track_id: int | None
) -> TrackInfo | Answer:
    """The track a question about one track means: the one it names, else the current one."""
    if q.tracks:
        return one_track(q.tracks[0].name, q, gaz)
    if q.unknown_names:
        name = q.unknown_names[0]
        found = gaz.resolve(name, "track")
        if found.found:
            return one_track(found.name or name, q, gaz)
        return _no_such_track(name, found.suggestions)
    name = leftover(q.text, q)
    if name and not _FOLLOW_UP.search(fold(q.text)):
        return not_in_library(name, gaz)
    if current_track_id is not None and current_track_id in snap.tracks:
        q.follow_up = True
        return snap.tracks[current_track_id]
    if q.artist or q.album:
        scope = f"by {q.artist}" if q.artist else f"on {q.album}"
        return dont_know("no_track", f"which track {scope} do you mean?")
    return dont_know("no_track", "which track do you mean? Name it, or play one first.")


def unknown_filter(unknown: tuple[str, str], gaz: Gazetteer) -> Answer:
    """ "How many tracks by Radiohead?" with no Radiohead: say so, with close names."""
    fields, name = unknown
    sugg: list[str] = []
    for fld in fields.split(" or "):
        if fld in ("artist", "album", "composer"):
            sugg += [s for s in gaz.resolve(name, fld).suggestions if s not in sugg]
    text = f"I don't know any {fields} called {name} in your library" + _did_you_mean(sugg[:3])
    return Answer(
        text, None, known=False, reason="no_match", suggestions=sugg[:3], facts={fields: name}
    )


def not_in_library(name: str, gaz: Gazetteer) -> Answer:
    """ "I can't find 'X' in your library; did you mean A or B?" """
    sugg = gaz.suggest(name)
    return dont_know(
        "no_track",
        f"I can't find '{name}' in your library" + _did_you_mean(sugg),
        suggestions=sugg,
    )


def leftover(text: str, q: Question, skip: list[str] | None = None) -> str | None:
    """The words of a question that look like a name we could not find."""
    # prefer a quoted name
    m = re.search(r"[\"“']([^\"”']{2,80})[\"”']", text)
    if m:
        return m.group(1).strip()
    norm = fold(text)
    for name in skip or []:
        norm = norm.replace(fold(name), " ")
    words = [
        w
        for w in norm.split()
        if w not in _QUESTION_WORDS and w not in LABEL_WORDS and w not in VOCABULARY
    ]
    if q.artist:
        words = [w for w in words if w not in fold(q.artist).split()]
    if q.album:
        words = [w for w in words if w not in fold(q.album).split()]
    if not words:
        return None
    return " ".join(words)


__all__ = ["leftover", "not_in_library", "one_track", "track_for", "unknown_filter"]
