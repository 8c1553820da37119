"""What a track sounds like: instruments, vocals, mood, genre.

Three kinds of evidence, strongest first:

1. the file's own tags and the user's tags (a fact: "the file says piano");
2. the musicnn tags stored at ingest (``Tag.origin == "model"``, top tags per
   model with their probability) - absence of a tag is weak evidence of "no";
3. MusicBERT zero-shot: the track's embedding against text prompts for every
   label of the family ("music with piano", "music with guitar", ...); the
   asked label's margin over the BEST other label of the family becomes a
   probability. (A margin over the family's mean said "yes" to guitar for a
   piano track, since the trained space puts the two prompts close together:
   a label counts only where it clearly beats every rival; a near tie hedges.)

The model evidence is averaged into one probability; its distance from 0.5 is
the confidence, and an answer below ``HEDGE_BELOW`` is hedged, never stated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assistant.qa.answer import Answer, dont_know
from assistant.qa.audio_facts import KEY_CONFIDENCE_FLOOR
from assistant.qa.library import Snapshot, TrackInfo
from assistant.qa.text import join_names, percent
from assistant.qa.wording import CONTENT_LABELS, IMPLIED_BY
from catalog.names import fold
from musicbert.tagger import trusted

#: Confidence (|p - 0.5| * 2) below which a content answer is hedged.
HEDGE_BELOW = 0.3
#: Slope of the logistic turning a zero-shot cosine margin into a probability.
ZERO_SHOT_SLOPE = 25.0
#: How much each kind of model evidence counts in the average.
WEIGHTS = {"musicnn": 0.6, "musicbert": 0.4}

#: musicnn tag names (MSD and MTT, lowercased as stored) that speak for (+) or against (-)
#: each label.
TAG_EVIDENCE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "piano": (("piano",), ()),
    "guitar": (("guitar", "acoustic"), ()),
    "strings": (("strings", "violin", "cello", "classical"), ()),
    "violin": (("violin", "strings"), ()),
    "cello": (("cello",), ()),
    "drums": (("drums", "beat", "beats", "techno", "dance"), ("classical", "ambient")),
    "flute": (("flute",), ()),
    "trumpet": ((), ()),
    "brass": ((), ()),
    "organ": ((), ()),
    "harpsichord": (("harpsichord",), ()),
    "harp": (("harp",), ()),
    "clarinet": ((), ()),
    "oboe": ((), ()),
    "bassoon": ((), ()),
    "saxophone": ((), ()),
    "mallets": ((), ()),
    "viola": ((), ()),
    "banjo": ((), ()),
    "accordion": ((), ()),
    "harmonica": ((), ()),
    "recorder": ((), ()),
    "choir": (("choir", "choral", "opera"), ("no vocals", "no vocal", "no voice")),
    "synthesizer": (("synth", "electronic", "electronica", "electro", "techno"), ("classical",)),
    "bass": ((), ()),
    "orchestra": (("classical", "strings", "classic"), ()),
    "vocals": (
        (
            "vocal",
            "vocals",
            "singing",
            "voice",
            "male vocal",
            "female vocal",
            "male voice",
            "female voice",
            "male vocalists",
            "female vocalists",
            "female vocalist",
            "choir",
            "choral",
            "opera",
            "female vocals",
            "male vocals",
            "woman",
            "man",
            "male",
            "female",
        ),
        ("no vocals", "no vocal", "no voice", "instrumental"),
    ),
    "instrumental": (
        ("no vocals", "no vocal", "no voice", "instrumental"),
        ("vocal", "vocals", "singing", "voice", "male vocalists", "female vocalists", "choir"),
    ),
    "happy": (("happy", "party", "catchy"), ("sad",)),
    "sad": (("sad",), ("happy", "party")),
    "calm": (
        ("mellow", "chill", "chillout", "soft", "quiet", "easy listening", "slow"),
        ("loud", "fast", "metal"),
    ),
    "energetic": (
        ("fast", "loud", "party", "dance", "hard rock", "metal"),
        ("slow", "quiet", "soft", "mellow"),
    ),
    "dark": ((), ()),
    "epic": ((), ()),
    "tense": ((), ()),
    "classical": (("classical", "classic", "strings", "violin", "harpsichord"), ()),
    "electronic": (("electronic", "electronica", "electro", "techno", "house", "synth"), ()),
    "rock": (
        ("rock", "classic rock", "alternative rock", "hard rock", "indie rock", "progressive rock"),
        (),
    ),
    "jazz": (("jazz",), ()),
    "ambient": (("ambient", "new age", "chillout"), ()),
    "pop": (("pop", "indie pop"), ()),
    "folk": (("folk",), ()),
    "metal": (("metal", "heavy metal"), ()),
    "techno": (("techno",), ()),
    "blues": (("blues",), ()),
}

PROMPTS = {
    "instrument": "music played on {}",
    "vocals": "{} music",
    "mood": "{} music",
    "genre": "{} music",
}


@dataclass
class Evidence:
    source: str  # "file tags", "musicnn", "musicbert"
    p: float  # probability that the label applies
    detail: str


def _tag_probability(track: TrackInfo, label: str) -> Evidence | None:
    model_tags = {t.name.lower(): t.confidence for t in track.tags if t.origin == "model"}
    if not model_tags:
        return None
    pos, neg = TAG_EVIDENCE.get(label, ((), ()))
    if not pos and not neg:
        return None
    hits = [(n, model_tags[n]) for n in pos if n in model_tags]
    misses = [(n, model_tags[n]) for n in neg if n in model_tags]
    if hits:
        direct = {label, *CONTENT_LABELS.get(_family_of(label), {}).get(label, ())}

        def strength(hit: tuple[str, float]) -> float:
            # a tag naming the label itself is strong evidence; a related one ("electronic"
            # for a synthesizer, "classical" for strings) only leans
            name, c = hit
            if name in direct:
                return 0.6 + 0.4 * min(1.0, c / 0.5)
            return 0.5 + 0.2 * min(1.0, c / 0.5)

        name, c = max(hits, key=strength)
        kind = "" if name in direct else "related "
        return Evidence("musicnn", strength((name, c)), f"{kind}tag '{name}' at {c:.2f}")
    if misses:
        name, c = max(misses, key=lambda h: h[1])
        return Evidence("musicnn", 0.4 - 0.4 * min(1.0, c / 0.5), f"tag '{name}' at {c:.2f}")
    if not pos:
        return None
    return Evidence("musicnn", 0.25, f"no '{pos[0]}' among the top tags")


def tag_names_label(tag_name: str, label: str, family: str) -> bool:
    """Whether a tag such as "Acoustic Grand Piano" or "String Ensemble 1" names the label."""
    padded = f" {fold(tag_name)} "
    words = (label, *CONTENT_LABELS[family][label], *IMPLIED_BY.get(label, ()))
    return any(f" {w} " in padded for w in words)


def _family_of(label: str) -> str:
    return next((fam for fam, labels in CONTENT_LABELS.items() if label in labels), "instrument")


def _file_fact(track: TrackInfo, label: str, family: str) -> Evidence | None:
    own = [t for t in track.tags if t.origin in ("file", "user")]
    found = [t.name for t in own if tag_names_label(t.name, label, family)]
    if found:
        return Evidence("file tags", 1.0, f"tagged '{found[0]}'")
    if family == "instrument":
        instruments = [
            t for t in track.tags if t.origin in ("file", "user") and t.kind == "instrument"
        ]
        if instruments:  # the file lists its instruments and this one is not among them
            return Evidence(
                "file tags", 0.0, "instruments listed: " + ", ".join(t.name for t in instruments)
            )
    if family == "genre":
        genres = [
            t.name.lower() for t in track.tags if t.origin in ("file", "user") and t.kind == "genre"
        ]
        if any(label in g.split() for g in genres):
            return Evidence("file tags", 1.0, f"genre '{genres[0]}'")
    return None


class ContentModel:
    """Scores labels for tracks; the prompt vectors are embedded once per model."""

    def __init__(
        self, embedder=None, use_file_tags: bool = True, allow_untrained: bool = False
    ) -> None:
        self.embedder = embedder
        self.use_file_tags = use_file_tags
        #: an untrained model's similarities mean nothing; only tests of the mechanism allow it
        self.allow_untrained = allow_untrained
        self._prompt_vectors: dict[str, tuple[list[str], np.ndarray]] = {}

    @property
    def zero_shot_ready(self) -> bool:
        if self.embedder is None:
            return False
        return self.allow_untrained or not getattr(self.embedder, "untrained", False)

    def family_vectors(self, family: str) -> tuple[list[str], np.ndarray]:
        """The label names of a family and their prompts' text vectors (embedded once)."""
        if family not in self._prompt_vectors:
            labels = list(CONTENT_LABELS[family])
            prompts = [PROMPTS[family].format(label) for label in labels]
            self._prompt_vectors[family] = (labels, self.embedder.embed_text(prompts))
        return self._prompt_vectors[family]

    def _zero_shot(
        self, track: TrackInfo, label: str, family: str, snapshot: Snapshot
    ) -> Evidence | None:
        if not self.zero_shot_ready:
            return None
        model_id = str(self.embedder.model_id)
        if model_id not in snapshot.embeddings:
            return None
        ids, matrix = snapshot.embeddings[model_id]
        try:
            row = ids.index(track.id)
        except ValueError:
            return None
        labels, vectors = self.family_vectors(family)
        sims = vectors @ matrix[row]
        i = labels.index(label)
        others = np.delete(sims, i)
        if others.size:
            rival = int(np.argmax(others))
            rival_label = [lab for j, lab in enumerate(labels) if j != i][rival]
            margin = float(sims[i] - others[rival])
            detail = f"zero-shot margin {margin:+.3f} over {rival_label}"
        else:
            margin = float(sims[i])
            detail = f"zero-shot similarity {margin:+.3f}"
        p = 1.0 / (1.0 + math.exp(-ZERO_SHOT_SLOPE * margin))
        return Evidence("musicbert", p, detail)

    def evidence(
        self, track: TrackInfo, label: str, family: str, snapshot: Snapshot
    ) -> tuple[float | None, list[Evidence]]:
        """The probability that ``label`` applies to ``track`` and what it rests on."""
        if self.use_file_tags:
            fact = _file_fact(track, label, family)
            if fact is not None:
                return fact.p, [fact]
        found = [
            e
            for e in (
                _tag_probability(track, label),
                self._zero_shot(track, label, family, snapshot),
            )
            if e is not None
        ]
        if not found:
            if any(t.origin == "model" for t in track.tags) and not any(
                TAG_EVIDENCE.get(label, ((), ()))
            ):
                return None, [Evidence("musicnn", 0.5, f"the tagger has no tag for {label}")]
            return None, []
        total = sum(WEIGHTS[e.source] for e in found)
        return sum(WEIGHTS[e.source] * e.p for e in found) / total, found

    # -- answers -----------------------------------------------------------------------------

    def answer_polar(self, track: TrackInfo, family: str, label: str, snapshot: Snapshot) -> Answer:
        """ "Is there piano in X?" - yes / no with a confidence, hedged when low."""
        p, ev = self.evidence(track, label, family, snapshot)
        ids = [track.id]
        if p is None and ev:
            why = "MusicBERT's zero-shot vote is unavailable" + (
                " (the model has no trained weights)" if self.embedder is not None else ""
            )
            return dont_know(
                "low_confidence",
                f"{ev[0].detail}, and {why}, so I can't tell "
                f"whether {track.label} has {_phrase(family, label)}.",
                track_ids=ids,
            )
        if p is None:
            return dont_know(
                "no_analysis",
                f"{track.label} has no model tags or embedding yet, so "
                "I cannot tell what it sounds like.",
                track_ids=ids,
            )
        yes = p >= 0.5
        conf = abs(p - 0.5) * 2
        facts = {
            "label": label,
            "family": family,
            "probability": round(p, 3),
            "evidence": [vars(e) for e in ev],
        }
        basis = "; ".join(f"{e.source}: {e.detail}" for e in ev)
        phrase = _phrase(family, label)
        if ev and ev[0].source == "file tags":
            text = (
                f"{'Yes' if yes else 'No'}, {track.label} {'has' if yes else 'has no'} "
                f"{phrase} ({basis})."
            )
            return Answer(text, yes, confidence=1.0, track_ids=ids, facts=facts)
        if conf < HEDGE_BELOW:
            text = (
                f"I'm not sure whether {track.label} has {phrase}: the models lean "
                f"{'yes' if yes else 'no'} at {percent(p)}, which is too close to call "
                f"({basis})."
            )
            return Answer(
                text,
                yes,
                confidence=conf,
                hedged=True,
                reason="low_confidence",
                track_ids=ids,
                facts=facts,
            )
        text = (
            f"{'Probably yes' if yes else 'Probably not'}: the models give {percent(p)} "
            f"that {track.label} has {phrase} ({basis})."
        )
        return Answer(text, yes, confidence=conf, track_ids=ids, facts=facts)

    def answer_choice(
        self, track: TrackInfo, family: str, choices: list[str], snapshot: Snapshot
    ) -> Answer:
        """ "Is it happy or sad?" - the better supported of two labels, or a hedge."""
        scored = []
        for label in choices:
            p, ev = self.evidence(track, label, family, snapshot)
            scored.append((p, label, ev))
        known = [(p, lab, ev) for p, lab, ev in scored if p is not None]
        ids = [track.id]
        if not known:
            return dont_know(
                "no_analysis",
                f"there is no evidence about {' or '.join(choices)} for {track.label} yet.",
                track_ids=ids,
            )
        known.sort(key=lambda x: -x[0])
        p, best, ev = known[0]
        other = known[1][0] if len(known) > 1 else 1 - p
        facts = {"scores": {lab: (None if q is None else round(q, 3)) for q, lab, _ in scored}}
        basis = "; ".join(f"{e.source}: {e.detail}" for e in ev)
        if p < 0.5:
            return dont_know(
                "low_confidence",
                f"neither {' nor '.join(choices)} stands out for {track.label} ({basis}).",
                track_ids=ids,
                facts=facts,
            )
        if p - other < HEDGE_BELOW / 2:
            return Answer(
                f"I'm not sure: {best} edges it at {percent(p)} against "
                f"{percent(other)}, too close to call ({basis}).",
                best,
                confidence=p - other,
                hedged=True,
                reason="low_confidence",
                track_ids=ids,
                facts=facts,
            )
        return Answer(
            f"More {best} than {[c for c in choices if c != best][0]}: {percent(p)} "
            f"against {percent(other)} ({basis}).",
            best,
            confidence=p - other,
            track_ids=ids,
            facts=facts,
        )

    def answer_family(self, track: TrackInfo, family: str, snapshot: Snapshot) -> Answer:
        """ "What instruments / mood / genre?" - the labels the evidence supports."""
        ids = [track.id]
        scored = []
        for label in CONTENT_LABELS[family]:
            p, ev = self.evidence(track, label, family, snapshot)
            if p is not None:
                scored.append((p, label, ev))
        file_genres = [
            t.name for t in track.tags if t.origin in ("file", "user") and t.kind == family
        ]
        if not scored and not file_genres:
            return dont_know(
                "no_analysis", f"{track.label} has no model tags or embedding yet.", track_ids=ids
            )
        scored.sort(key=lambda s: -s[0])
        likely = [label for p, label, _ in scored if p >= 0.5 + HEDGE_BELOW / 2][:3]
        facts = {
            "family": family,
            "scores": {label: round(p, 3) for p, label, _ in scored},
            "file_tags": file_genres,
        }
        if file_genres and family in ("genre", "mood", "instrument"):
            text = f"The file tags {track.label} as {join_names(file_genres)}."
            if likely:
                text += f" The models also hear {join_names(likely)}."
            return Answer(text, file_genres + likely, confidence=1.0, track_ids=ids, facts=facts)
        if not likely:
            p, best, _ = scored[0]
            return Answer(
                f"I'm not sure about the {family} of {track.label}: the closest is {best} at "
                f"{percent(p)}, which is too low to say.",
                [best],
                confidence=abs(p - 0.5) * 2,
                hedged=True,
                reason="low_confidence",
                track_ids=ids,
                facts=facts,
            )
        return Answer(
            f"The models hear {join_names(likely)} in {track.label} ("
            + ", ".join(f"{label} {percent(p)}" for p, label, _ in scored if label in likely)
            + ").",
            likely,
            confidence=min(abs(p - 0.5) * 2 for p, lab, _ in scored if lab in likely),
            track_ids=ids,
            facts=facts,
        )

    def describe(self, track: TrackInfo, snapshot: Snapshot) -> Answer:
        """A short grounded portrait of a track: facts, analysis, top tags."""
        bits = [track.label]
        if track.album:
            bits.append(f"from {track.album}" + (f" ({track.year})" if track.year else ""))
        text = " ".join(bits) + "."
        facts: dict = {}
        if track.analysed and not track.silent:
            parts = []
            if track.tempo:
                parts.append(f"about {track.tempo:.0f} BPM")
            if track.key_name:
                weak = (
                    track.key_source != "file"
                    and track.key_confidence is not None
                    and track.key_confidence < KEY_CONFIDENCE_FLOOR
                )
                parts.append(f"{'perhaps ' if weak else ''}in {track.key_name}")
            if track.loudness_lufs is not None:
                parts.append(f"{track.loudness_lufs:.0f} LUFS")
            elif track.loudness_db is not None:
                parts.append(f"{track.loudness_db:.0f} dBFS")
            if parts:
                text += " The analysis finds it " + ", ".join(parts) + "."
            facts.update(
                tempo=track.tempo,
                key=track.key_name,
                key_confidence=track.key_confidence,
                loudness_db=track.loudness_db,
                loudness_lufs=track.loudness_lufs,
            )
        file_tags = [t.name for t in track.tags if t.origin in ("file", "user")]
        if file_tags:
            text += f" Its tags say {join_names(file_tags)}."
        model = sorted(
            (t for t in track.tags if t.origin == "model" and trusted(t.name, t.confidence)),
            key=lambda t: -t.confidence,
        )[:5]
        if model:
            text += (
                " The tagger hears "
                + ", ".join(f"{t.name} ({percent(t.confidence)})" for t in model)
                + "."
            )
        facts.update(file_tags=file_tags, model_tags={t.name: t.confidence for t in model})
        if not track.analysed and not model and not file_tags:
            text += " It has not been analysed yet, so I can't say more about how it sounds."
        return Answer(text, track.title, track_ids=[track.id], facts=facts)


def _phrase(family: str, label: str) -> str:
    if family == "vocals":
        return "vocals" if label == "vocals" else "no vocals (instrumental)"
    if family == "mood":
        return f"a {label} mood"
    if family == "genre":
        return f"the sound of {label}"
    return label
