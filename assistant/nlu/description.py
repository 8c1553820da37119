"""Bare descriptions ("jazz", "calm piano", "epic orchestral battle music") are requests.

People type what they want to hear without a verb. Such an utterance is not
phrased as a question (no question word or auxiliary verb first, no "?") and is
made of descriptors: genre, mood and instrument words, decades, tempi, and the
small words around them ("something", "music", "with", "for"), optionally
followed by words the vocabulary lacks when a descriptor leads ("epic boss fight
music"). The intent classifier learns them from nlu.yml; this rule keeps one
from being read as a question about a track or a concept when the classifier
still leans that way (a placeholder word after masking can look like "is this
calm?").
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant.nlu.spans import TAG_TYPES, Candidate, tokens
from assistant.turn import Entity
from musicbert.vocabulary import FILLER_WORDS

#: The intent a bare description becomes when the classifier chose a question.
SEARCH_INTENT = "search_music"
#: Intents that already ask for music; a bare description under them is left alone.
REQUEST_INTENTS = ("search_music", "play_music", "recommend")
#: Intents a bare description may be taken from: questions, and "not understood".
QUESTION_INTENTS = {
    "ask_content",
    "ask_concept",
    "ask_track_info",
    "ask_stats",
    "describe_track",
    "compare_tracks",
    "out_of_scope",
}
#: First words that make a question or a request for something other than music.
QUESTION_OPENERS = set(
    "what what's whats which who who's whose whom when where why how how's is isn't are "
    "aren't was were does doesn't do don't did didn't can could would will should shall "
    "has have had am may might must tell explain define describe compare name".split()
)
#: Words that carry no content of their own in a description (one list, in the vocabulary).
FILLER = FILLER_WORDS
#: Words that describe music or its use without being a tag ("female vocals", "for running").
DESCRIPTIVE = set(
    "female male vocal instrumental acoustic electric live soft loud quiet heavy light "
    "background ambient slow fast quick upbeat lively groovy catchy funky gentle warm cosy cozy "
    "running run workout gym training studying study focus focusing reading sleep sleeping "
    "relaxing relax party dancing dance driving drive road trip cooking dinner work working "
    "coding gaming meditation yoga morning evening night late rainy rain summer winter "
    "sunday chill chilling".split()
)
#: Entity types that describe music (besides the tempo attribute).
DESCRIPTOR_TYPES = (*TAG_TYPES, "decade")
#: Entity types naming one thing; a track or playlist name makes it no bare description.
NAME_BLOCKERS = ("track", "playlist", "control")


def is_question(text: str) -> bool:
    """Phrased as a question: a question word or auxiliary verb first, or a "?"."""
    if "?" in text:
        return True
    toks = tokens(text)
    return bool(toks) and toks[0][0] in QUESTION_OPENERS


def is_bare_description(text: str, entities: Sequence[Entity], cands: Sequence[Candidate]) -> bool:
    """Whether ``text`` only describes music (see the module docstring).

    ``entities`` are the selected spans; ``cands`` every candidate, so that a
    direction word ("more", "faster") that the chosen intent gated away still
    marks the utterance as a change of the last search rather than a new one.
    """
    if not text.strip() or is_question(text):
        return False
    if any(c.entity == "direction" for c in cands):
        return False
    if any(e.entity in NAME_BLOCKERS for e in entities):
        return False
    descriptors = [
        e
        for e in entities
        if e.entity in DESCRIPTOR_TYPES or (e.entity == "attribute" and e.value == "tempo")
    ]
    if not descriptors:
        return False  # nothing to search for ("songs for running" is left to the classifier)
    covered = [(e.start, e.end) for e in entities]
    content: list[tuple[str, bool]] = []  # (word, is a descriptor) for each non-filler word
    for word, start, end in tokens(text):
        if any(s <= start and end <= e for s, e in covered):
            span = next(x for x in entities if x.start <= start and end <= x.end)
            if span.entity in ("artist", "album", "number"):
                continue  # "by Maxstack", "5 calm songs": filters of the search, not content
            content.append((word, span in descriptors))
        elif word in FILLER:
            continue
        else:
            content.append((word, word in DESCRIPTIVE))
    if not content:
        return False
    if content[0][1]:
        return True  # a descriptor leads: "epic orchestral battle music"
    return all(is_desc for _, is_desc in content)


def reroute(
    intent: str, probs: dict[str, float], text: str, entities, cands
) -> tuple[str, float] | None:
    """(search intent, confidence) when a bare description was read as a question, else None.

    The confidence is the probability the classifier gave to asking for music at all
    (search + play + recommend).
    """
    if intent not in QUESTION_INTENTS or not is_bare_description(text, entities, cands):
        return None
    return SEARCH_INTENT, round(sum(probs.get(i, 0.0) for i in REQUEST_INTENTS), 4)
