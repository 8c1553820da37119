"""Entity extraction: which of the candidate spans an utterance holds are its entities.

The candidates come from the gazetteer of names (``assistant.nlu.gazetteer``) and from
patterns (``assistant.nlu.entity_patterns``). Overlaps are settled by length, then
source, then confidence. Some entity types only make sense for some intents
("louder" is a volume command in playback_control but a search direction in refine),
so extraction takes the intent when it is known; a lower-case title that only
continues a description ("epic orchestral battle music") is not a name.
"""

from __future__ import annotations

import re

from assistant.nlu.entity_patterns import find_patterns, unknown_artists
from assistant.nlu.gazetteer import Gazetteer, Vocabulary
from assistant.nlu.spans import FUZZY, NAME_TYPES, PATTERN, TAG_TYPES, TOKEN, Candidate, tokens
from assistant.turn import Entity
from catalog.names import fold

#: Intents whose turns carry no entities worth acting on.
NO_ENTITY_INTENTS = {"greet", "goodbye", "thank", "help", "affirm", "deny", "out_of_scope"}
#: Entity types that only count under some intents (others: everywhere).
INTENT_GATES = {
    "control": {"playback_control"},
    "direction": {"refine"},
    "attribute": {
        "ask_track_info",
        "ask_content",
        "ask_stats",
        "ask_concept",
        "describe_track",
        "compare_tracks",
        "search_music",
        "recommend",
        "refine",
        "select_item",
    },
}
#: A playlist named without the word "playlist" only counts for these intents.
PLAYLIST_INTENTS = {
    "playlist_add", "playlist_create", "playlist_delete", "playlist_export", "play_music"
}  # fmt: skip
#: ``select``'s intent for "any intent but a playlist's": every entity but a bare playlist name.
NO_PLAYLIST = "<no playlist>"
#: Longer texts are only searched in their first MAX_TEXT_CHARS characters.
MAX_TEXT_CHARS = 1000


class EntityExtractor:
    """Finds entity spans in an utterance; see the module docstring for the rules."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.gazetteer = Gazetteer(vocab)

    def candidates(self, text: str) -> list[Candidate]:
        """Every possible span before the intent is known (reused by ``select``)."""
        if not text or not text.strip():
            return []
        text = text[:MAX_TEXT_CHARS]  # spans stay valid offsets into the full text
        cands = self.gazetteer.find(text, tokens(text)) + find_patterns(text, self.vocab)
        cands += unknown_artists(text, cands, self.gazetteer.tag_words)
        for c in cands:
            if c.entity in (*NAME_TYPES, *TAG_TYPES) and c.source != PATTERN:
                c.confidence += _case_bonus(text, c)
        return cands

    def select(self, text: str, cands: list[Candidate], intent: str | None) -> list[Entity]:
        """The non-overlapping winners among ``cands`` allowed for ``intent``, in text order."""
        if intent in NO_ENTITY_INTENTS:
            return []
        cands = [c for c in cands if _allowed(c, intent)]
        cands = [c for c in cands if not _inside_description(text, c, cands)]
        cands = sorted(
            cands,
            key=lambda c: (c.end - c.start, c.source, c.from_lookup, round(c.confidence, 3)),
            reverse=True,
        )
        taken: list[Candidate] = []
        for c in cands:
            if all(c.end <= t.start or c.start >= t.end for t in taken):
                taken.append(c)
        taken.sort(key=lambda c: c.start)
        out = []
        for c in taken:
            value = c.value
            surface = fold(text[c.start : c.end])
            if (
                c.entity not in ("number", "decade", "playlist")
                and c.source != PATTERN
                and self.vocab.synonym_types.get(surface) in (None, c.entity)
            ):
                value = self.vocab.synonyms.get(surface, value)
            out.append(
                Entity(c.entity, value, c.start, c.end, round(min(c.confidence, 1.0), 3),
                       c.extractor)
            )  # fmt: skip
        return out

    def extract(self, text: str, intent: str | None = None) -> list[Entity]:
        """Non-overlapping entities of ``text`` (longest, then surest source, win)."""
        if intent in NO_ENTITY_INTENTS:
            return []
        return self.select(text, self.candidates(text), intent)


def _allowed(c: Candidate, intent: str | None) -> bool:
    if intent is None or intent == NO_PLAYLIST:
        return intent is None or not is_bare_playlist(c)
    gate = INTENT_GATES.get(c.entity)
    if gate is not None and intent not in gate:
        return False
    if is_bare_playlist(c) and intent not in PLAYLIST_INTENTS:
        return False
    return True


def is_bare_playlist(c: Candidate) -> bool:
    """A playlist's name found without a cue ("the X playlist", "called X")."""
    return c.entity == "playlist" and c.source != PATTERN


#: What may stand between two words of one description ("calm, slow and quiet").
_MUSIC_NOUNS = set(
    "music songs tracks tunes pieces stuff theme themes beats sounds vibes jams numbers".split()
)
_DESCRIPTION_GAP = re.compile(r"[\s,/&+-]*(?:(?:and|or|with)\s+)?", re.I)


def _inside_description(text: str, c: Candidate, cands: list[Candidate]) -> bool:
    """Whether ``c`` is a lower-case title that only continues a description.

    In "epic orchestral battle music" the words "battle music" spell the track
    "Battle Music", but they are the tail of a description: a mood and a genre lead
    into them. A title (or a playlist name without the word "playlist") written in
    lower case right after a genre, mood or instrument word is read as part of that
    description, not as a name; written with capitals ("epic Battle Music") or led in
    by anything else ("play battle music", "is battle music epic?") it stays a name.
    """
    if c.entity not in ("track", "album", "playlist") or c.source == PATTERN:
        return False
    if text[c.start : c.start + 1].isupper():
        return False
    for d in cands:
        if d.entity in TAG_TYPES and d.end <= c.start and d.source != FUZZY:
            gap = _DESCRIPTION_GAP.match(text, d.end)
            if gap is not None and gap.end() == c.start:
                return True
    # ... or right before a word for music ("triumphant victory music"), or before a tag
    # word joined by "with" / "and" ("a love theme with harp") or followed by a word for
    # music ("frantic electronic stuff"); not "is battle music epic?"
    if _music_noun_after(text, c.end):
        return True
    gap = _DESCRIPTION_GAP.match(text, c.end)
    joined = bool(text[gap.start() : gap.end()].strip(" "))
    return any(
        d.entity in TAG_TYPES
        and d.source != FUZZY
        and d.start == gap.end()
        and (joined or _music_noun_after(text, d.end))
        for d in cands
    )


def _music_noun_after(text: str, end: int) -> bool:
    """Whether the next word after ``end`` (past spaces) is a word for music."""
    follow = TOKEN.match(text, end + len(text[end:]) - len(text[end:].lstrip()))
    return follow is not None and fold(follow.group()) in _MUSIC_NOUNS


def _case_bonus(text: str, c: Candidate) -> float:
    """Break ties between a title and a tag word: "Sad" is the track, "sad" the mood."""
    surface = text[c.start : c.end]
    capitalised = surface[:1].isupper() and c.start > 0
    if c.entity in NAME_TYPES:
        return 0.05 if capitalised else -0.2
    return 0.0 if capitalised else 0.05


__all__ = ["MAX_TEXT_CHARS", "NO_ENTITY_INTENTS", "EntityExtractor"]
