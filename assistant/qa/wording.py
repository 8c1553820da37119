"""The words of questions: content labels, question patterns, typos people make.

Tables and regular expressions only: ``questions`` reads a question with them,
``content`` and ``engine`` look labels up in them.
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz, process

CONTENT_LABELS: dict[str, dict[str, tuple[str, ...]]] = {
    "instrument": {
        "piano": ("piano", "pianos", "keyboard"),
        "guitar": ("guitar", "guitars"),
        "strings": ("strings", "string", "string section", "string orchestra", "string ensemble"),
        "violin": ("violin", "violins", "fiddle"),
        "cello": ("cello", "cellos"),
        "drums": ("drums", "drum", "percussion", "drumming"),
        "flute": ("flute", "flutes"),
        "trumpet": ("trumpet", "trumpets"),
        "brass": ("brass", "horns", "french horn"),
        "organ": ("organ", "church organ"),
        "harpsichord": ("harpsichord",),
        "harp": ("harp",),
        "clarinet": ("clarinet", "clarinets"),
        "oboe": ("oboe", "oboes"),
        "bassoon": ("bassoon", "bassoons"),
        "saxophone": ("saxophone", "sax", "saxophones"),
        "mallets": ("marimba", "xylophone", "vibraphone", "glockenspiel", "celesta"),
        "viola": ("viola", "violas"),
        "banjo": ("banjo", "banjos"),
        "accordion": ("accordion", "accordions"),
        "harmonica": ("harmonica", "harmonicas", "mouth organ"),
        "recorder": ("recorder", "recorders"),
        "choir": ("choir", "choral", "chorus"),
        "synthesizer": ("synth", "synths", "synthesizer", "synthesiser", "synthesizers"),
        "bass": ("bass guitar", "bassline", "bass line"),
        "orchestra": ("orchestra", "orchestral"),
    },
    "vocals": {
        "vocals": ("vocals", "vocal", "singing", "singer", "sung", "voice", "voices", "lyrics"),
        "instrumental": ("instrumental", "no vocals", "without vocals", "without singing"),
    },
    "mood": {
        "happy": ("happy", "cheerful", "joyful", "upbeat", "uplifting"),
        "sad": ("sad", "melancholic", "melancholy", "mournful", "sorrowful"),
        "calm": ("calm", "peaceful", "relaxing", "relaxed", "soothing", "mellow", "chill"),
        "energetic": ("energetic", "lively", "intense", "exciting"),
        "dark": ("dark", "ominous", "sinister", "gloomy"),
        "epic": ("epic", "heroic", "grand", "triumphant"),
        "tense": ("tense", "suspenseful", "scary"),
    },
    "genre": {
        "classical": ("classical",),
        "electronic": ("electronic", "electronica", "edm"),
        "rock": ("rock",),
        "jazz": ("jazz", "jazzy"),
        "ambient": ("ambient",),
        "pop": ("pop",),
        "folk": ("folk",),
        "metal": ("metal",),
        "techno": ("techno",),
        "blues": ("blues",),
    },
}

# -- patterns ---------------------------------------------------------------------------------

PATTERN_TEXTS = {
    # score-only attributes
    "time_signature": r"\btime signature|\bmet(er|re)\b|\bbeats? (per|in a|to the) (bar|measure)",
    "measures": r"\b(measures|bars)\b",
    "highest_note": r"\b(highest|top(most)?) (note|pitch)|\bhighest\b.*\bnote\b",
    "lowest_note": r"\b(lowest|bottom) (note|pitch)|\blowest\b.*\bnote\b",
    "instrumentation": r"\binstrumentation\b|\bscored for\b|\bhow many (parts|voices)\b"
    r"|\bwhat (parts|voices)\b|\bwhich (parts|voices)\b|\binstruments?\b",
    # catalog facts
    "title": r"\bwhat('?s| is) (playing|on)\b|\bwhat (song|track|piece|tune) is (this|that|it|"
    r"playing|on)\b|\bwhat is this (song|track|piece|tune)?\s*$|\bwhat('?s| is) (this|it) called"
    r"|\bname of (this|the|that) (song|track|piece)\b|\bwhat am i listening to\b",
    "composer": r"\bcompos(ed|er|ers|ition)\b|\bwho wrote\b|\bwritten by\b|\bwho write",
    "artist": r"\bwho (performs?|performed|plays?|played|is|made|did|recorded|sings?)\b"
    r"|\bperform(er|ers|s|ed)?\b|\bartist\b|\bwho('?s| is) (it|this|that) by\b|\bby whom\b"
    r"|\bwhos it by\b|\bwho by\b|\bmusician\b|\bband\b|\bbehind\b",
    "album_tracks": r"\b(what|which) (tracks?|songs?|pieces?) (are|is) (on|in|from)\b"
    r"|\bwhat('?s| is) on\b|\btrack ?list\b|\blist\b.*\balbum\b|\bsongs on\b|\btracks on\b",
    "album": r"\balbum\b|\brecord\b|\bsoundtrack\b|\bwhich release\b",
    "year": r"\byear\b|\bwhen was\b|\bwhen did\b|\breleased?\b|\bcome out\b|\bcame out\b"
    r"|\bdate\b|\bhow old\b|\bwhat decade\b",
    "duration": r"\bhow long\b|\blength\b|\bduration\b|\brun(ning)? ?time\b"
    r"|\bhow many (minutes|seconds)",
    "licence": r"\blicen[cs](e|ed|ing)\b|\bcopyright\b|\bcan i (share|reuse|use|remix)\b"
    r"|\bterms\b",
    # audio analysis
    "mode": r"\bmajor or minor\b|\bminor or major\b|\b(is|in) (it |this |that )?(a )?(minor|major)"
    r"( key| mode)?\b",
    "key": r"\bkey\b|\btonality\b|\btonic\b",
    "tempo": r"\btempo\b|\bbpm\b|\bbeats per minute\b|\bhow fast\b|\bhow slow\b|\bspeed\b"
    r"|\bpace\b",
    "loudness": r"\bloud(ness)?\b|\bvolume\b|\bhow quiet\b|\bdb(fs)?\b|\bdecibels?\b|\blevel\b",
    # content
    "describe": r"\bdescribe\b|\bsound like\b|\bwhat kind of (music|track|song|piece)\b"
    r"|\btell me about\b|\bwhat is it like\b|\bwhat('?s| is) .* like\b|\bwhat style\b",
    "genre": r"\bgenre\b|\bstyle\b|\bkind of music\b|\bwhat type of music\b",
    "mood": r"\bmood\b|\bfeel(ing)?\b|\bvibe\b|\batmosphere\b|\bemotion",
}
PATTERNS = {k: re.compile(v) for k, v in PATTERN_TEXTS.items()}

COMPARATIVES = {
    "faster": ("tempo", "max"),
    "quicker": ("tempo", "max"),
    "slower": ("tempo", "min"),
    "longer": ("duration", "max"),
    "shorter": ("duration", "min"),
    "louder": ("loudness", "max"),
    "quieter": ("loudness", "min"),
    "softer": ("loudness", "min"),
    "older": ("year", "min"),
    "earlier": ("year", "min"),
    "newer": ("year", "max"),
    "more recent": ("year", "max"),
    "higher tempo": ("tempo", "max"),
    "lower tempo": ("tempo", "min"),
    "more bpm": ("tempo", "max"),
    "fewer bpm": ("tempo", "min"),
}
SUPERLATIVES = {
    "fastest": ("tempo", "max"),
    "quickest": ("tempo", "max"),
    "highest tempo": ("tempo", "max"),
    "slowest": ("tempo", "min"),
    "lowest tempo": ("tempo", "min"),
    "longest": ("duration", "max"),
    "shortest": ("duration", "min"),
    "loudest": ("loudness", "max"),
    "quietest": ("loudness", "min"),
    "softest": ("loudness", "min"),
    "oldest": ("year", "min"),
    "earliest": ("year", "min"),
    "newest": ("year", "max"),
    "most recent": ("year", "max"),
    "latest": ("year", "max"),
}
SAME = re.compile(
    r"\bsame (key|tempo|artist|album|composer|year|mode|speed|length)\b"
    r"|\b(key|tempo|artist|album|composer|year|mode)s? (the same|match|differ)"
    r"|\bshare (?:a |the )?(key|tempo|artist|album|composer|year)\b"
)
COUNT = re.compile(
    r"\bhow many\b(?! (bpm|beats|minutes|seconds|measures|bars|notes|parts|voices|db|decibels))"
    r"|\bnumber of\b|\bcount\b"
)
TOTAL = re.compile(
    r"\b(total|combined|overall|entire|whole|all together|altogether)\b.*\b(length|duration|"
    r"time|running time|playtime|playing time|long)\b|\bhow long (is|are) (the )?(whole |entire )?"
    r"(album|all)\b|\bhow long are all\b|\bhow much music\b"
)
LIST = re.compile(
    r"\b(which|what|any|list|show|name|find|give me)\b.*\b(tracks?|songs?|pieces?|music|"
    r"anything|something|ones?)\b|\bany(thing|one)? (around|near|about|in|at)\b|\banything\b"
)
STATS = re.compile(
    r"\b(library )?(stats|statistics)\b|\bsummar(y|ise|ize) (of )?(my |the )?library\b"
    r"|\bwhat('?s| is) in my library\b|\boverview of (my |the )?library\b"
)
TOP_ARTIST = re.compile(
    r"\b(which|what|who) (artist|composer|musician)?\s*(has|have|made|wrote) (the )?most\b"
    r"|\bmost (tracks|songs)\b|\btop artist\b"
)
AVERAGE = re.compile(r"\baverage\b|\bmean\b|\btypical\b|\bmedian\b")
DECADE = re.compile(r"\b(?:the )?(19|20)?([0-9])0s\b")
BPM = re.compile(r"(\d+(?:\.\d+)?)\s*(?:bpm|beats per minute|beats a minute)")
BPM_RANGE = re.compile(r"between (\d+(?:\.\d+)?) and (\d+(?:\.\d+)?)\s*(?:bpm|beats)")
YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")
MINUTES = re.compile(r"(\d+(?:\.\d+)?)\s*(minutes?|mins?|seconds?|secs?)")
CONCEPT = re.compile(
    r"^(?:so |ok |okay |and |hey |please |can you )*(?:what(?:s| is| are)|define|explain|"
    r"what does|what do you mean by|meaning of|what is meant by|tell me what|whats? an?)"
    r"\s+(an? |the )?(?:(?:word|term|concept)\s+)?(.+?)(?:\s+(?:mean|means|is))?\s*$"
)
DIFFERENCE = re.compile(
    r"\bdifference between (?:an? |the )?(.+?) and (?:an? |the )?(.+?)(?: keys?| music)?\s*$"
)
NOT_A_TERM = frozenset(
    """this that it its playing on now the current next last these those my your one song track
    tune piece music fastest slowest longest shortest loudest quietest oldest newest total
    average""".split()
)
CONCEPT_ANY = re.compile(
    r"\b(define|definition|explain|meaning of|what does .* mean|concept of|in music theory)\b"
)


#: Words questions are made of; a misspelt one ("tmepo") is corrected before matching.
VOCABULARY = frozenset(
    """tempo tempos length duration licence license licensed composer composers composed
    album albums artist artists loudness released release measures signature instruments
    instrument instrumentation highest lowest fastest faster slowest slower longest longer
    shortest shorter loudest louder quietest quieter describe description vocals genre
    genres mood released minutes seconds total average tracks songs pieces library major
    minor performs performed performer recorded written wrote sound sounds score compare
    describe""".split()
)


LABEL_WORDS = frozenset(
    word
    for labels in CONTENT_LABELS.values()
    for label, words in labels.items()
    for phrase in (label, *words)
    for word in phrase.split()
)


def correct_typos(norm: str) -> str:
    """Replace misspelt question words (5+ letters, one or two edits) by the intended one."""
    out = []
    for w in norm.split():
        if len(w) >= 5 and w not in VOCABULARY and w not in LABEL_WORDS and w.isalpha():
            hit = process.extractOne(w, VOCABULARY, scorer=fuzz.ratio, score_cutoff=80)
            # a misspelling keeps its length; "record" is a word, not a short "recorded"
            if (
                hit is not None
                and abs(len(hit[0]) - len(w)) <= 1
                and not (hit[0].startswith(w) or w.startswith(hit[0]))
            ):
                w = hit[0]
        out.append(w)
    return " ".join(out)


#: Instruments that imply a broader label: a violin part means there are strings.
IMPLIED_BY: dict[str, tuple[str, ...]] = {
    "strings": ("violin", "viola", "cello", "fiddle", "string ensemble", "contrabass"),
    "orchestra": ("string ensemble",),
    "brass": ("trumpet", "trombone", "tuba", "french horn"),
    "vocals": ("choir", "voice", "vocals", "singing"),
}
