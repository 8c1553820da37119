"""The QA engine: one question (an intent and a parse, or plain text) in, one grounded reply out.

Every fact in a reply comes from the catalog, the audio analysis, the stored
model tags and embeddings, a music21 score, or the glossary; ``Reply.data``
carries those facts and a machine-readable answer. When the data cannot answer,
the reply says "I don't know" and why, and suggests close names for unknown ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from assistant.qa.aggregates import (
    answer_average,
    answer_count,
    answer_count_albums,
    answer_count_artists,
    answer_list,
    answer_stats,
    answer_superlative,
    answer_top_artist,
    answer_total_duration,
)
from assistant.qa.answer import Answer, dont_know
from assistant.qa.audio_facts import answer_audio
from assistant.qa.compare import answer_compare
from assistant.qa.concepts import Glossary, default_glossary
from assistant.qa.content import ContentModel
from assistant.qa.facts import answer_album_tracks, answer_fact
from assistant.qa.library import LibraryView, Snapshot, TrackInfo
from assistant.qa.questions import INTENT_TYPES, QA_INTENTS, Question, analyse
from assistant.qa.resolve import Gazetteer
from assistant.qa.scores import answer_score
from assistant.qa.which_track import (
    leftover,
    not_in_library,
    one_track,
    track_for,
    unknown_filter,
)
from assistant.turn import Parse, Reply, TrackRef
from catalog.names import fold
from musicbert.errors import MusicBertError

#: NLU ``attribute`` entity values and the question they stand for.
_ATTRIBUTE_ENTITY = {
    "tempo": ("audio", "tempo"),
    "key": ("audio", "key"),
    "loudness": ("audio", "loudness"),
    "year": ("facts", "year"),
    "duration": ("facts", "duration"),
    "album": ("facts", "album"),
    "artist": ("facts", "artist"),
    "genre": ("content", "genre"),
}


@dataclass
class QAContext:
    """What the conversation has established, so that "and its key?" can be answered."""

    current_track_id: int | None = None
    last_result_ids: list[int] = field(default_factory=list)
    last_attribute: str | None = None  # "type:attribute", e.g. "audio:tempo"


class QAEngine:
    """Answers music questions from the library; cheap to call once built."""

    def __init__(
        self,
        catalog,
        embedder=None,
        nlu=None,
        glossary: Glossary | None = None,
        use_file_tags: bool = True,
    ) -> None:
        self.catalog = catalog
        self.embedder = embedder
        self.nlu = nlu
        self.glossary = glossary or default_glossary()
        self.view = LibraryView(catalog)
        self.content = ContentModel(embedder, use_file_tags=use_file_tags)
        self._gazetteer: tuple[int, Gazetteer] | None = None

    # -- public API --------------------------------------------------------------------------

    def ask(self, text: str, context: QAContext | None = None) -> Reply:
        """Answer plain text: through the NLU when there is one, else by reading it directly."""
        context = context if context is not None else QAContext()
        if self.nlu is not None:
            parse = self.nlu.parse(text)
            routed = parse.intent in QA_INTENTS
            reply = self.answer(parse.intent if routed else None, parse, context)
            reply.data["nlu_intent"] = parse.intent
            reply.data["nlu_routed"] = routed
            return reply
        parse = Parse(text=text, intent="", confidence=0.0)
        return self.answer(None, parse, context)

    def answer(self, intent: str | None, parse: Parse, context: QAContext) -> Reply:
        """Answer one parsed question; ``context`` is read and updated for follow-ups."""
        text = (parse.text or "").strip()
        if not text:
            return self._reply(
                dont_know(
                    "not_understood",
                    'you didn\'t ask anything. Try "how long is Nebula?" or "what is a fugue?"',
                ),
                None,
                parse,
                intent,
            )
        try:
            snapshot = self.view.current()
            gaz = self._gaz(snapshot)
            names = {f: _entity_names(parse, f) for f in ("track", "artist", "album")}
            allowed = INTENT_TYPES.get(intent) if intent else None
            q = analyse(text[:2000], gaz, self.glossary, allowed, names)
            self._apply_attribute_entity(q, parse)
            if q.qtype is None and context.last_attribute and q.concept_phrase is None:
                q.qtype, q.attribute = context.last_attribute.split(":", 1)
                q.follow_up = not q.tracks
            if q.qtype is None and intent == "describe_track":
                q.qtype, q.attribute = "content", "describe"
            answer = self._dispatch(q, snapshot, gaz, context)
        except MusicBertError as exc:
            answer = dont_know("not_understood", str(exc))
            q = None
        self._remember(q, answer, context)
        return self._reply(answer, q, parse, intent, snapshot if q else None)

    def warm(self) -> None:
        """Load the library view, the glossary and every score's facts ahead of questions."""
        from assistant.qa.scores import ScoreError, score_facts

        snapshot = self.view.current()
        self._gaz(snapshot)
        for t in snapshot.tracks.values():
            if t.score_ref:
                try:
                    score_facts(t.score_ref)
                except ScoreError:
                    pass  # answered as "cannot read the score" when asked
        if self.content.zero_shot_ready:
            for family in ("instrument", "vocals", "mood", "genre"):
                self.content.family_vectors(family)

    # -- dispatch ----------------------------------------------------------------------------

    def _dispatch(self, q: Question, snap: Snapshot, gaz: Gazetteer, ctx: QAContext) -> Answer:
        if q.qtype == "concept" and len(q.concepts) == 2:
            a, b = q.concepts
            text = " ".join(f"{c.term[:1].upper() + c.term[1:]}: {c.definition}" for c in (a, b))
            sources = "; ".join(dict.fromkeys((*a.sources, *b.sources)))
            return Answer(
                f"{text} (Sources: {sources}.)", [a.term, b.term], facts={"terms": [a.term, b.term]}
            )
        if q.qtype == "concept":
            c = q.concept
            sources = "; ".join(c.sources) if c.sources else "no source named"
            return Answer(
                f"{c.term[:1].upper() + c.term[1:]}: {c.definition} (Sources: {sources}.)",
                c.term,
                facts={"term": c.term, "sources": list(c.sources)},
            )
        if q.qtype == "aggregate":
            return self._aggregate(q, snap, gaz)
        if q.qtype == "facts" and q.attribute == "album_tracks":
            album = q.album or q.filters.album
            if album is None:
                return dont_know("no_match", "which album do you mean?")
            return answer_album_tracks(album, snap)
        if q.qtype == "compare":
            pair = []
            for m in q.tracks[:2]:
                found = one_track(m.name, q, gaz)
                if isinstance(found, Answer):
                    return found
                pair.append(found)
            if len(pair) == 1:
                norm = fold(q.text)
                spans = [norm[m.start : m.end] for m in q.tracks if m.start >= 0]
                unknown = leftover(q.text, q, skip=[pair[0].title, *spans])
                if unknown:
                    return not_in_library(unknown, gaz)
                if ctx.current_track_id in snap.tracks and ctx.current_track_id != pair[0].id:
                    pair.append(snap.tracks[ctx.current_track_id])
            if not pair and len(ctx.last_result_ids) >= 2:
                pair = [snap.tracks[i] for i in ctx.last_result_ids[:2] if i in snap.tracks]
            if len(pair) < 2:
                return dont_know("no_track", "which two tracks should I compare?")
            return answer_compare(pair[0], pair[1], q.attribute or "tempo", q.direction)
        if (
            q.qtype is None
            and not q.tracks
            and q.concept_phrase
            and (q.unknown_concept or not leftover(q.text, q))
        ):
            return dont_know(
                "no_concept",
                f"'{q.concept_phrase}' is neither a track in your library nor a concept in my "
                "glossary.",
                suggestions=gaz.suggest(q.concept_phrase) + self.glossary.suggest(q.concept_phrase),
            )
        track = track_for(q, snap, gaz, ctx.current_track_id)
        if isinstance(track, Answer):
            return track
        if q.qtype is None:
            q.qtype, q.attribute = "content", "describe"
        return self._about_track(q, track, snap)

    def _about_track(self, q: Question, track: TrackInfo, snap: Snapshot) -> Answer:
        attr = q.attribute or "describe"
        asked_mode = q.filters.mode
        if q.qtype == "facts" and attr == "title":
            return Answer(
                f"That's {track.label}" + (f", from {track.album}" if track.album else "") + ".",
                track.title,
                track_ids=[track.id],
            )
        if q.qtype == "facts":
            if attr == "composer" and not track.composer and track.score_ref:
                return answer_score(track, "composer")
            return answer_fact(track, attr, snap)
        if q.qtype == "audio":
            answer = answer_audio(track, attr, snap, asked_mode)
            if attr in ("key", "mode") and track.score_ref and answer.known:
                score = answer_score(track, attr)
                if score.known:
                    answer.text += f" Its score is in {score.facts.get('score_key')}."
                    answer.facts["score_key"] = score.facts.get("score_key")
            return answer
        if q.qtype == "score":
            return answer_score(track, attr, asked_mode)
        if q.qtype == "content":
            if attr == "describe":
                return self.content.describe(track, snap)
            if len(q.choices) == 2:
                return self.content.answer_choice(track, q.label_family, q.choices, snap)
            if q.label and q.polar:
                return self.content.answer_polar(track, q.label_family, q.label, snap)
            family = q.label_family or attr
            if family not in ("instrument", "vocals", "mood", "genre"):
                family = "instrument"
            if family == "vocals" and q.label:
                return self.content.answer_polar(track, family, q.label, snap)
            return self.content.answer_family(track, family, snap)
        return dont_know("not_understood", "I could not tell what you want to know.")

    def _has_label(self, snap: Snapshot):
        """A confident yes from the content evidence (file tags, or models above the hedge)."""
        from assistant.qa.content import HEDGE_BELOW

        def test(track: TrackInfo, family: str, label: str) -> bool:
            p, _ = self.content.evidence(track, label, family, snap)
            return p is not None and p >= 0.5 + HEDGE_BELOW / 2

        return test

    def _aggregate(self, q: Question, snap: Snapshot, gaz: Gazetteer) -> Answer:
        f = q.filters
        attr = q.attribute or "count"
        if q.unknown_filters and attr not in ("stats", "count_artists"):
            return unknown_filter(q.unknown_filters[0], gaz)
        has_label = self._has_label(snap)
        if attr == "stats":
            return answer_stats(snap)
        if attr == "top_artist":
            return answer_top_artist(snap, f)
        if attr.startswith("average_"):
            return answer_average(snap, attr.removeprefix("average_"), f, has_label)
        if attr == "count_artists":
            return answer_count_artists(snap)
        if attr == "count_albums":
            return answer_count_albums(snap, f)
        if attr == "total_duration":
            return answer_total_duration(snap, f, has_label)
        if attr.startswith("superlative_"):
            return answer_superlative(
                snap, attr.removeprefix("superlative_"), q.direction or "max", f, has_label
            )
        if attr == "list":
            return answer_list(snap, f, has_label)
        return answer_count(snap, f, has_label)

    # -- bookkeeping -------------------------------------------------------------------------

    def _gaz(self, snapshot: Snapshot) -> Gazetteer:
        if self._gazetteer is None or self._gazetteer[0] != id(snapshot):
            self._gazetteer = (id(snapshot), Gazetteer(snapshot, self.catalog))
        return self._gazetteer[1]

    @staticmethod
    def _apply_attribute_entity(q: Question, parse: Parse) -> None:
        value = parse.first("attribute")
        if q.qtype is None and value in _ATTRIBUTE_ENTITY:
            q.qtype, q.attribute = _ATTRIBUTE_ENTITY[value]

    @staticmethod
    def _remember(q: Question | None, answer: Answer, ctx: QAContext) -> None:
        if q is None or q.qtype is None:
            return
        if q.qtype in ("facts", "audio", "content", "score") and q.attribute != "album_tracks":
            if len(answer.track_ids) == 1:
                ctx.current_track_id = answer.track_ids[0]
            if answer.reason not in ("no_track", "ambiguous"):
                ctx.last_attribute = f"{q.qtype}:{q.attribute}"
        elif answer.track_ids and q.qtype in ("aggregate", "facts"):
            ctx.last_result_ids = list(answer.track_ids)
            if len(answer.track_ids) == 1:
                ctx.current_track_id = answer.track_ids[0]
        elif q.qtype == "compare" and answer.track_ids:
            ctx.last_result_ids = list(answer.track_ids)

    def _reply(
        self,
        answer: Answer,
        q: Question | None,
        parse: Parse,
        intent: str | None,
        snapshot: Snapshot | None = None,
    ) -> Reply:
        tracks = []
        if snapshot is not None:
            for tid in answer.track_ids[:20]:
                t = snapshot.tracks.get(tid)
                if t is not None:
                    tracks.append(
                        TrackRef(
                            id=t.id,
                            title=t.title,
                            artist=t.artist,
                            album=t.album,
                            duration=t.duration,
                        )
                    )
        data = {
            "type": q.qtype if q else None,
            "attribute": q.attribute if q else None,
            "answer": answer.value,
            "known": answer.known,
            "reason": answer.reason,
            "confidence": answer.confidence,
            "hedged": answer.hedged,
            "facts": answer.facts,
            "suggestions": answer.suggestions,
            "track_ids": answer.track_ids,
            "follow_up": bool(q and q.follow_up),
        }
        if q is not None and q.filters and not q.filters.empty():
            data["filters"] = {k: v for k, v in asdict(q.filters).items() if v not in (None, False)}
        return Reply(
            text=answer.text,
            parse=parse,
            tracks=tracks,
            action=f"qa_{q.qtype}" if q and q.qtype else "qa",
            data=data,
        )


#: Entity surfaces too generic to be a name ("the slowest piece" is not "Piano Pieces").
_GENERIC = frozenset(
    "piece pieces song songs track tracks music tune tunes album albums record records one "
    "it this that artist band".split()
)


def _entity_names(parse: Parse, field: str) -> list[str]:
    """NLU entity values of one kind, leaving out ones whose words in the text are generic."""
    out = []
    for e in parse.entities:
        if e.entity != field:
            continue
        surface = fold(parse.text[e.start : e.end]) if 0 <= e.start < e.end else ""
        if surface and surface in _GENERIC:
            continue
        out.append(e.value)
    return out
