"""The words people use for musicnn's tags: one table, read by captions and search.

musicnn speaks in Last.fm and MagnaTagATune tags ("Hip-Hop", "Mellow", "no vocals");
people type "rap", "calm", "instrumental". ``PHRASES`` lists, for each canonical tag
(``musicbert.tagger.canonical_tag``), how a person might say it, the tag's own
spelling first. Training captions draw their wording from it and the search's
lexical evidence matches query words against it, so both agree on what "EDM" means.
"""

from __future__ import annotations

import re
from functools import lru_cache

#: canonical tag -> phrasings, the tag's own name first
PHRASES: dict[str, tuple[str, ...]] = {
    # genres and styles
    "rock": ("rock", "rock music", "guitar rock"),
    "classic rock": ("classic rock", "70s rock", "old-school rock"),
    "hard rock": ("hard rock", "heavy rock"),
    "alternative rock": ("alternative rock", "alt rock"),
    "alternative": ("alternative", "alt"),
    "indie": ("indie",),
    "indie rock": ("indie rock",),
    "indie pop": ("indie pop",),
    "progressive rock": ("progressive rock", "prog rock", "prog"),
    "punk": ("punk", "punk rock"),
    "metal": ("metal", "heavy metal", "metal music"),
    "heavy metal": ("heavy metal", "metal"),
    "pop": ("pop", "pop music", "pop song"),
    "electronic": ("electronic", "electronica", "EDM", "electronic music"),
    "electro": ("electro", "electronic"),
    "techno": ("techno", "electronic dance music", "EDM"),
    "house": ("house", "house music", "club music"),
    "dance": ("dance", "dance music", "club"),
    "hip-hop": ("hip hop", "rap", "hip-hop beats"),
    "rnb": ("r&b", "rnb", "rhythm and blues"),
    "soul": ("soul", "soul music"),
    "funk": ("funk", "funky"),
    "jazz": ("jazz", "jazzy"),
    "blues": ("blues", "bluesy"),
    "country": ("country", "country music", "americana"),
    "folk": ("folk", "folk music", "traditional folk"),
    "classical": ("classical", "classical music", "orchestral"),
    "opera": ("opera", "operatic singing"),
    "new age": ("new age", "meditation music"),
    "ambient": ("ambient", "atmospheric", "soundscape"),
    "experimental": ("experimental", "avant-garde"),
    "easy listening": ("easy listening", "lounge"),
    "indian": ("indian", "indian classical"),
    "instrumental": ("instrumental", "no vocals"),
    "no vocals": ("no vocals", "instrumental", "without singing", "no vocal", "no voice"),
    # moods and qualities
    "mellow": ("mellow", "calm", "relaxed", "gentle"),
    "chill": ("chill", "relaxing", "chilled out", "laid-back"),
    "happy": ("happy", "cheerful", "upbeat", "joyful"),
    "sad": ("sad", "melancholic", "sombre"),
    "party": ("party", "party music", "upbeat"),
    "sexy": ("sexy", "sensual"),
    "catchy": ("catchy", "hooky"),
    "beautiful": ("beautiful", "lovely"),
    "weird": ("weird", "strange", "quirky"),
    "loud": ("loud", "intense", "powerful"),
    "quiet": ("quiet", "soft", "calm"),
    "soft": ("soft", "gentle", "quiet"),
    "fast": ("fast", "uptempo", "energetic", "fast-paced"),
    "slow": ("slow", "slow tempo", "slow-paced"),
    "acoustic": ("acoustic", "unplugged"),
    "solo": ("solo", "a solo instrument"),
    # instruments and voices
    "guitar": ("guitar", "guitars"),
    "piano": ("piano", "keys"),
    "strings": ("strings", "string section", "orchestral strings"),
    "violin": ("violin", "fiddle"),
    "cello": ("cello",),
    "harp": ("harp",),
    "harpsichord": ("harpsichord",),
    "flute": ("flute",),
    "sitar": ("sitar",),
    "synth": ("synth", "synthesizer", "synths"),
    "drums": ("drums", "percussion"),
    "beat": ("beat", "beats", "a strong beat"),
    "choir": ("choir", "choral voices"),
    "choral": ("choral", "choir"),
    "vocals": ("vocals", "singing", "a singer", "vocal"),
    "female vocals": (
        "female vocals",
        "a female singer",
        "woman singing",
        "female vocal",
        "female voice",
    ),
    "male vocals": ("male vocals", "a male singer", "man singing", "male vocal", "male voice"),
    # when a song was popular, not what it is: used sparingly
    "60s": ("60s", "sixties"),
    "70s": ("70s", "seventies"),
    "80s": ("80s", "eighties"),
    "90s": ("90s", "nineties"),
    "00s": ("2000s",),
    "oldies": ("oldies", "old songs"),
}

#: what kind of word each tag is in a sentence
GENRES = frozenset(
    ("rock", "classic rock", "hard rock", "alternative rock", "alternative", "indie",
     "indie rock", "indie pop", "progressive rock", "punk", "metal", "heavy metal", "pop",
     "electronic", "electro", "techno", "house", "dance", "hip-hop", "rnb", "soul", "funk",
     "jazz", "blues", "country", "folk", "classical", "opera", "new age", "ambient",
     "experimental", "easy listening", "indian")
)  # fmt: skip
MOODS = frozenset(
    ("mellow", "chill", "happy", "sad", "party", "sexy", "catchy", "beautiful", "weird",
     "loud", "quiet", "soft", "fast", "slow", "acoustic")
)  # fmt: skip
INSTRUMENTS = frozenset(
    ("guitar", "piano", "strings", "violin", "cello", "harp", "harpsichord", "flute", "sitar",
     "synth", "drums", "beat", "choir", "choral", "vocals", "female vocals", "male vocals",
     "solo", "instrumental", "no vocals")
)  # fmt: skip
ERAS = frozenset(("60s", "70s", "80s", "90s", "00s", "oldies"))


#: Words that carry no content of their own in a request or description.
FILLER_WORDS = frozenset(
    "a an the some any something anything stuff music musics song songs track tracks tune "
    "tunes piece pieces sound sounds sounding vibe vibes kind sort type style of with and or "
    "but for to in on from by very really quite pretty bit little lot lots plenty please pls "
    "plz just only mostly mainly maybe ones one few couple "
    "feel feeling mood good nice".split()
)
#: Words that ask for something rather than describe it.
COMMAND_WORDS = frozenset(
    "play find search show give put on start queue recommend suggest me i i'd id want like "
    "love need hear listen let's lets us can could would you please some more less get make "
    "it this that these those them bit is are".split()
)


def _key(text: str) -> str:
    """Lower case, hyphens as spaces ("hip-hop" = "hip hop"), punctuation but "&" dropped."""
    return " ".join(re.sub(r"[^a-z0-9&]+", " ", text.casefold()).split())


_PHRASE_TAGS: dict[str, set[str]] = {}
for _tag, _phrases in PHRASES.items():
    for _p in _phrases:
        _PHRASE_TAGS.setdefault(_key(_p), set()).add(_tag)
_LONGEST = max(len(p.split()) for p in _PHRASE_TAGS)


@lru_cache(maxsize=65536)
def tags_in(text: str) -> frozenset[str]:
    """Canonical tags a text names by any of their phrasings ("some chill rap" -> chill, hip-hop).

    Longest phrases win, so "heavy metal" is not also read as "metal" + "heavy".
    Cached: a search reads the tag names of hundreds of candidates, and they repeat.
    """
    words = _key(text).split()
    found: set[str] = set()
    i = 0
    while i < len(words):
        for n in range(min(_LONGEST, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + n])
            tags = _PHRASE_TAGS.get(phrase)
            if tags:
                found |= tags
                i += n
                break
        else:
            i += 1
    return frozenset(found)
