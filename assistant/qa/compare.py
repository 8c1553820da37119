"""Two tracks side by side: which is faster / longer / louder / older, same key or not."""

from __future__ import annotations

from assistant.qa.answer import Answer, dont_know
from assistant.qa.audio_facts import loudness_measure
from assistant.qa.library import TrackInfo
from assistant.qa.text import format_duration
from catalog.keys import same_key

_VALUES = {
    "tempo": (lambda t: t.tempo, lambda v: f"{v:.0f} BPM", True),
    "duration": (lambda t: t.duration, format_duration, False),
    "loudness": (lambda t: t.loudness_db, lambda v: f"{v:.1f} dBFS", True),
    "year": (lambda t: t.year, str, False),
}
_WORD = {
    ("tempo", "max"): "faster",
    ("tempo", "min"): "slower",
    ("duration", "max"): "longer",
    ("duration", "min"): "shorter",
    ("loudness", "max"): "louder",
    ("loudness", "min"): "quieter",
    ("year", "max"): "newer",
    ("year", "min"): "older",
}


def answer_compare(a: TrackInfo, b: TrackInfo, attribute: str, direction: str | None) -> Answer:
    ids = [a.id, b.id]
    if attribute == "overview":
        return answer_overview(a, b)
    if attribute.startswith("same_"):
        return _same(a, b, attribute.removeprefix("same_"))
    getter, show, analysed = _VALUES[attribute]
    if attribute == "loudness":
        getter, show = loudness_measure([a, b])
        if getter(a) is None or getter(b) is None:  # one analysed before LUFS was measured
            getter, show = (lambda t: t.loudness_db), (lambda v: f"{v:.1f} dBFS RMS")
    direction = direction or "max"
    va, vb = getter(a), getter(b)
    for t, v in ((a, va), (b, vb)):
        if v is None:
            reason = "no_analysis" if analysed else "no_data"
            return dont_know(reason, f"{t.label} has no known {attribute}.", track_ids=ids)
    facts = {a.title: va, b.title: vb}
    word = _WORD[(attribute, direction)]
    if va == vb:
        return Answer(f"Neither: both are at {show(va)}.", "same", track_ids=ids, facts=facts)
    first = (va > vb) == (direction == "max")
    win, lose = (a, b) if first else (b, a)
    vw, vl = (va, vb) if first else (vb, va)
    text = f"{win.label} is {word}: {show(vw)} against {show(vl)} for {lose.label}."
    if attribute == "tempo" and abs(va - vb) / max(va, vb) < 0.03:
        text += " The difference is within the error of the tempo estimate."
        return Answer(text, win.title, hedged=True, track_ids=ids, facts=facts)
    return Answer(text, win.title, track_ids=ids, facts=facts)


def answer_overview(a: TrackInfo, b: TrackInfo) -> Answer:
    """Side by side: length, tempo, key, loudness, year, artist."""
    rows = []
    facts: dict = {}
    for attr, (getter, show, _) in _VALUES.items():
        va, vb = getter(a), getter(b)
        facts[attr] = {a.title: va, b.title: vb}
        if va is not None and vb is not None:
            rows.append(f"{attr} {show(va)} vs {show(vb)}")
    if a.key_name and b.key_name:
        rows.append(f"key {a.key_name} vs {b.key_name}")
        facts["key"] = {a.title: a.key_name, b.title: b.key_name}
    if a.artist != b.artist:
        rows.append(f"artist {a.artist or '?'} vs {b.artist or '?'}")
    text = (
        f"{a.label} vs {b.label}: "
        + ("; ".join(rows) if rows else "I know too little about them to compare")
        + "."
    )
    return Answer(text, [a.title, b.title], track_ids=[a.id, b.id], facts=facts)


def _same(a: TrackInfo, b: TrackInfo, attribute: str) -> Answer:
    ids = [a.id, b.id]
    if attribute in ("key", "mode"):
        for t in (a, b):
            if not t.analysed or not t.key:
                return dont_know(
                    "no_analysis", f"{t.label} has no key from the analysis yet.", track_ids=ids
                )
        if attribute == "key":
            same = bool(same_key((a.key, a.mode), (b.key, b.mode)))
        else:
            same = a.mode == b.mode
        text = (
            f"{'Yes' if same else 'No'}: {a.label} is in {a.key_name} and {b.label} in "
            f"{b.key_name} (by the audio analysis)."
        )
        return Answer(text, same, track_ids=ids, facts={a.title: a.key_name, b.title: b.key_name})
    if attribute == "tempo":
        if a.tempo is None or b.tempo is None:
            return dont_know("no_analysis", "one of them has no tempo yet.", track_ids=ids)
        same = abs(a.tempo - b.tempo) <= 0.04 * max(a.tempo, b.tempo)
        text = (
            f"{'Yes, about' if same else 'No, not'} the same: {a.tempo:.0f} BPM against "
            f"{b.tempo:.0f} BPM."
        )
        return Answer(text, same, track_ids=ids, facts={a.title: a.tempo, b.title: b.tempo})
    getter = {
        "artist": lambda t: t.artist,
        "album": lambda t: t.album,
        "composer": lambda t: t.composer,
        "year": lambda t: t.year,
        "duration": lambda t: round(t.duration or 0),
    }[attribute]
    va, vb = getter(a), getter(b)
    if va is None or vb is None:
        return dont_know(
            "no_data", f"the library lacks the {attribute} of one of them.", track_ids=ids
        )
    same = str(va).casefold() == str(vb).casefold()
    text = f"{'Yes' if same else 'No'}: {a.title} has {va}, {b.title} has {vb}."
    return Answer(text, same, track_ids=ids, facts={a.title: va, b.title: vb})
