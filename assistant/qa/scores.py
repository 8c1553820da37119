"""Questions answered from a piece's score with music21.

Tracks rendered from the music21 corpus keep the corpus path in
``Track.score_ref``. Parsing a score takes tens to hundreds of milliseconds, so
the facts drawn from it are computed once and cached in memory and on disk
(``cache/qa_scores``), which keeps answers fast after the first.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass

from assistant.qa.answer import Answer, dont_know
from assistant.qa.library import TrackInfo
from assistant.qa.text import join_names
from musicbert.errors import MusicBertError
from musicbert.paths import cache_dir

SCORE_ATTRIBUTES = (
    "time_signature",
    "measures",
    "key",
    "mode",
    "composer",
    "highest_note",
    "lowest_note",
    "instrumentation",
)
_CACHE_VERSION = 1

#: Corpus folders whose scores carry no composer in their metadata.
CORPUS_COMPOSERS = {
    "bach": "Johann Sebastian Bach",
    "beethoven": "Ludwig van Beethoven",
    "mozart": "Wolfgang Amadeus Mozart",
    "haydn": "Joseph Haydn",
    "handel": "George Frideric Handel",
    "joplin": "Scott Joplin",
    "schumann": "Robert Schumann",
    "schubert": "Franz Schubert",
    "chopin": "Frédéric Chopin",
    "monteverdi": "Claudio Monteverdi",
    "palestrina": "Giovanni Pierluigi da Palestrina",
    "corelli": "Arcangelo Corelli",
    "verdi": "Giuseppe Verdi",
    "josquin": "Josquin des Prez",
    "luca": "Luca Marenzio",
    "cpebach": "Carl Philipp Emanuel Bach",
}


class ScoreError(MusicBertError):
    """A score reference that music21 cannot find or read."""


@dataclass
class ScoreFacts:
    score_ref: str
    title: str | None
    composer: str | None
    time_signatures: list[str]
    measures: int
    key: str | None  # "F# minor"
    parts: list[str]
    highest_note: str | None
    lowest_note: str | None


_memory: dict[str, ScoreFacts] = {}
_lock = threading.Lock()


def score_facts(score_ref: str) -> ScoreFacts:
    """Facts of one corpus score, from memory, the disk cache, or a music21 parse."""
    with _lock:
        if score_ref in _memory:
            return _memory[score_ref]
    digest = hashlib.sha1(f"{_CACHE_VERSION}:{score_ref}".encode()).hexdigest()[:20]
    path = cache_dir("qa_scores") / f"{digest}.json"
    facts: ScoreFacts | None = None
    if path.exists():
        try:
            facts = ScoreFacts(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            facts = None  # a damaged cache entry is simply recomputed
    if facts is None:
        facts = _parse(score_ref)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(facts)), encoding="utf-8")
        tmp.replace(path)
    with _lock:
        _memory[score_ref] = facts
    return facts


def _parse(score_ref: str) -> ScoreFacts:
    from music21 import corpus, meter

    try:
        score = corpus.parse(score_ref)
    except Exception as exc:  # music21 raises many types for a missing or broken score
        raise ScoreError(f"music21 cannot read the score {score_ref!r}: {exc}") from exc
    if hasattr(score, "mergeScores"):  # an ABC file with one tune per voice is an Opus
        score = score.mergeScores()
    md = score.metadata
    composer = (md.composer if md is not None else None) or CORPUS_COMPOSERS.get(
        score_ref.split("/")[0].lower()
    )
    title = None
    if md is not None:
        title = md.title or md.movementName
    signatures: list[str] = []
    for ts in score.recurse().getElementsByClass(meter.TimeSignature):
        if ts.ratioString not in signatures:
            signatures.append(ts.ratioString)
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    measures = max(len(p.getElementsByClass("Measure")) for p in parts)
    names: list[str] = []
    for i, p in enumerate(parts):
        inst = p.getInstrument(returnDefault=False) if hasattr(p, "getInstrument") else None
        name = getattr(p, "partName", None) or (inst.instrumentName if inst else None)
        names.append(name or f"part {i + 1}")
    pitches = list(score.flatten().pitches)
    high = max(pitches, key=lambda p: p.ps).nameWithOctave if pitches else None
    low = min(pitches, key=lambda p: p.ps).nameWithOctave if pitches else None
    try:
        k = score.analyze("key")
        key = f"{k.tonic.name.replace('-', 'b')} {k.mode}"
    except Exception:  # analysis fails on scores without pitches
        key = None
    return ScoreFacts(
        score_ref=score_ref,
        title=title,
        composer=composer,
        time_signatures=signatures,
        measures=measures,
        key=key,
        parts=names,
        highest_note=high.replace("-", "b") if high else None,
        lowest_note=low.replace("-", "b") if low else None,
    )


def answer_score(track: TrackInfo, attribute: str, asked_mode: str | None = None) -> Answer:
    ids = [track.id]
    if not track.score_ref:
        return dont_know(
            "no_score",
            f"{track.label} is a recording, not a piece rendered from a score, so I have no "
            "score to read that from.",
            track_ids=ids,
        )
    try:
        f = score_facts(track.score_ref)
    except ScoreError as exc:
        return dont_know("no_score", str(exc), track_ids=ids)
    facts = {"score_ref": track.score_ref}
    name = track.title
    if attribute == "time_signature":
        if not f.time_signatures:
            return dont_know(
                "no_score", f"the score of {name} has no time signature.", track_ids=ids
            )
        value = f.time_signatures[0]
        more = (
            f" (it later changes to {join_names(f.time_signatures[1:])})"
            if len(f.time_signatures) > 1
            else ""
        )
        return Answer(
            f"{name} is in {value} time{more}, per its score.",
            value,
            track_ids=ids,
            facts=facts | {"time_signatures": f.time_signatures},
        )
    if attribute == "measures":
        return Answer(
            f"The score of {name} has {f.measures} measures.",
            f.measures,
            track_ids=ids,
            facts=facts,
        )
    if attribute in ("key", "mode"):
        if not f.key:
            return dont_know(
                "no_score", f"music21 found no key in the score of {name}.", track_ids=ids
            )
        mode = f.key.split()[-1]
        if attribute == "mode" and asked_mode:
            yes = mode == asked_mode
            return Answer(
                f"{'Yes' if yes else 'No'}: the score of {name} is in {f.key}.",
                yes,
                track_ids=ids,
                facts=facts | {"score_key": f.key},
            )
        return Answer(
            f"The score of {name} is in {f.key} (music21's key analysis).",
            f.key if attribute == "key" else mode,
            track_ids=ids,
            facts=facts | {"score_key": f.key},
        )
    if attribute == "composer":
        composer = track.composer or f.composer
        if not composer:
            return dont_know("no_data", f"the score of {name} names no composer.", track_ids=ids)
        return Answer(f"{name} was composed by {composer}.", composer, track_ids=ids, facts=facts)
    if attribute in ("highest_note", "lowest_note"):
        note = f.highest_note if attribute == "highest_note" else f.lowest_note
        if not note:
            return dont_know("no_score", f"the score of {name} has no notes.", track_ids=ids)
        word = "highest" if attribute == "highest_note" else "lowest"
        return Answer(
            f"The {word} note in the score of {name} is {note}.", note, track_ids=ids, facts=facts
        )
    if attribute == "instrumentation":
        n = len(f.parts)
        return Answer(
            f"The score of {name} has {n} part{'s' if n != 1 else ''}: {join_names(f.parts)}.",
            f.parts,
            track_ids=ids,
            facts=facts | {"parts": f.parts},
        )
    raise ValueError(f"not a score attribute: {attribute}")
