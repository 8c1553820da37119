"""Track-level tags from musicnn: 50 MSD + 50 MTT probabilities, patch-averaged.

musicnn scores each 3 s patch; a track's tag probability is the mean over its
patches (as musicnn's own tagger reports it). The catalog stores tags with a
kind (genre, mood, instrument, other), so every one of the 100 names is
classified here, by hand:

* genre: styles and scenes ("rock", "hip-hop", "new age", "chillout",
  "indian", "choral");
* mood: affect and character ("mellow", "sad", "party", "sexy", "catchy",
  "weird", "soft");
* instrument: what is heard playing, the voice included ("guitar", "strings",
  "female vocalists", "male voice", "choir", "acoustic", "synth");
* other: eras ("80s", "oldies"), tempo and loudness ("fast", "slow", "loud",
  "quiet"), rhythm ("beat", "beats") and absence of voice ("instrumental",
  "no vocals", "solo").

Both models name the same idea differently ("female vocalist", "woman",
"female voice"); ``canonical_tag`` folds those spellings into one name so that
merged tags keep the strongest score once (``merge_tags``; ``model_tags`` lists
every model's tags unmerged, for callers that pick per model).

``Tagger`` runs the musicnn models on log-mel patches: the embedder streams every
track's patches through one, so ingest, search and the training features
(``training.extract``) all get their musicnn numbers from the same code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from musicbert.errors import AudioError
from musicbert.logmel import N_MELS, PATCH_FRAMES
from musicbert.musicnn import MODEL_NAMES, TAGS, Musicnn, MusicnnOutput, load_musicnn

TagKind = Literal["genre", "mood", "instrument", "other"]

_KINDS: dict[str, tuple[str, ...]] = {
    "genre": (
        "rock", "pop", "alternative", "indie", "electronic", "dance", "alternative rock",
        "jazz", "metal", "chillout", "classic rock", "soul", "indie rock", "electronica",
        "folk", "punk", "blues", "hard rock", "ambient", "experimental", "hip-hop",
        "country", "easy listening", "funk", "electro", "heavy metal", "progressive rock",
        "rnb", "indie pop", "house", "classical", "classic", "techno", "indian", "opera",
        "new age", "choral",
    ),
    "mood": (
        "beautiful", "mellow", "chill", "party", "sexy", "catchy", "sad", "happy", "soft",
        "weird",
    ),
    "instrument": (
        "female vocalists", "female vocalist", "male vocalists", "guitar", "acoustic",
        "strings", "drums", "piano", "violin", "vocal", "vocals", "synth", "female", "male",
        "singing", "harpsichord", "flute", "woman", "male vocal", "sitar", "man", "choir",
        "voice", "male voice", "female vocal", "harp", "cello", "female voice",
        "female vocals", "male vocals",
    ),
    "other": (
        "00s", "80s", "90s", "70s", "60s", "oldies", "instrumental", "slow", "fast", "beat",
        "beats", "no vocals", "no vocal", "no voice", "loud", "quiet", "solo",
    ),
}  # fmt: skip
_KIND_OF: dict[str, TagKind] = {
    name: kind  # type: ignore[misc]
    for kind, names in _KINDS.items()
    for name in names
}

# Spellings of one idea across the two models -> the name we store.
_CANONICAL: dict[str, str] = {
    "female vocalists": "female vocals",
    "female vocalist": "female vocals",
    "female vocal": "female vocals",
    "female voice": "female vocals",
    "female": "female vocals",
    "woman": "female vocals",
    "male vocalists": "male vocals",
    "male vocal": "male vocals",
    "male voice": "male vocals",
    "male": "male vocals",
    "man": "male vocals",
    "vocal": "vocals",
    "voice": "vocals",
    "singing": "vocals",
    "no vocal": "no vocals",
    "no voice": "no vocals",
    "beats": "beat",
    "classic": "classical",
    "chillout": "chill",
    "electronica": "electronic",
}


def canonical_tag(name: str) -> str:
    """Lower-case name with the models' synonymous spellings folded together."""
    key = " ".join(name.strip().lower().split())
    return _CANONICAL.get(key, key)


#: from which confidence each tag may be shown to a person (``training.tag_trust``)
TRUST_FILE = Path(__file__).resolve().parent / "tag_trust.json"
_TRUST_FLOOR = 0.2  # tags the file does not list: shown only from this confidence


@lru_cache(maxsize=1)
def _trust() -> dict[str, float]:
    try:
        return dict(json.loads(TRUST_FILE.read_text())["thresholds"])
    except (OSError, ValueError, KeyError):
        return {}


def trust_threshold(tag_name: str) -> float:
    """The confidence from which the real-music dev set says this tag can be believed."""
    return _trust().get(canonical_tag(tag_name), _TRUST_FLOOR)


def trusted(tag_name: str, confidence: float) -> bool:
    """Whether a model's tag at this confidence is worth saying to a person."""
    return float(confidence) >= trust_threshold(tag_name)


def tag_kind(tag_name: str) -> TagKind:
    """ "genre", "mood", "instrument" or "other" for a musicnn tag (any spelling/case)."""
    key = " ".join(tag_name.strip().lower().split())
    return _KIND_OF.get(key) or _KIND_OF.get(canonical_tag(key), "other")


@dataclass(frozen=True)
class ModelTag:
    """One tag a model gives a track, with its patch-averaged probability."""

    name: str
    kind: TagKind
    confidence: float
    source: str


def average_probs(tag_probs: torch.Tensor | np.ndarray) -> np.ndarray:
    """(P, 50) per-patch probabilities -> (50,) track probabilities (mean over patches)."""
    probs = torch.as_tensor(tag_probs).detach().to("cpu", torch.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(
            f"expected per-patch probabilities shaped (P, tags), got {tuple(probs.shape)}"
        )
    return probs.mean(dim=0).to(torch.float32).numpy()


class Tagger:
    """MSD_musicnn and MTT_musicnn side by side: the one way from log-mel patches to
    musicnn's outputs. ``Embedder`` runs every streamed patch batch through one (so
    ingest, search and the training features all read musicnn here); alone, it tags
    patches a caller already has."""

    def __init__(
        self,
        models: Iterable[str | Musicnn] = MODEL_NAMES,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
    ) -> None:
        """``models``: names to load now, or already loaded ``Musicnn`` instances to
        share (e.g. the MSD model an embedder also uses for its patch vectors); other
        models are loaded when first asked for (``model``)."""
        self.device = torch.device(device)
        self.batch_size = max(1, int(batch_size))
        self.models: dict[str, Musicnn] = {}
        self._runners: dict[str, Any] = {}  # name -> OnnxMusicnn, or None: torch runs it
        for item in models:
            model = load_musicnn(item, self.device) if isinstance(item, str) else item
            self.models[model.name] = model.to(self.device).eval()

    def model(self, name: str) -> Musicnn:
        """The loaded ``name`` model (loaded on first use)."""
        if name not in self.models:
            self.models[name] = load_musicnn(name, self.device)
        return self.models[name]

    def runner(self, name: str) -> Callable[[torch.Tensor], MusicnnOutput]:
        """What runs ``name``: on a CPU, the model on ONNX Runtime (1.7x less CPU per
        patch, the same outputs; ``musicbert.musicnn_onnx``), else the torch module."""
        runners = self.__dict__.setdefault("_runners", {})  # (a copy made without __init__)
        if name not in runners:
            from musicbert.musicnn_onnx import onnx_musicnn

            runners[name] = onnx_musicnn(self.model(name), self.device)
        return runners[name] or self.model(name)

    @torch.inference_mode()
    def run(self, patches: torch.Tensor, names: Iterable[str]) -> dict[str, MusicnnOutput]:
        """Per-patch outputs of each named model for one batch of (P, 187, 96) patches
        already on the device (one forward pass per model; the caller sizes the batch)."""
        return {name: self.runner(name)(patches) for name in names}

    def tag_patches(self, patches: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
        """(P, 187, 96) log-mel patches -> {model name: (50,) mean tag probability}."""
        x = torch.as_tensor(
            np.asarray(patches) if not isinstance(patches, torch.Tensor) else patches
        )
        if x.ndim != 3 or x.shape[1:] != (PATCH_FRAMES, N_MELS) or x.shape[0] == 0:
            raise AudioError(
                f"tagger expects log-mel patches shaped (P, {PATCH_FRAMES}, {N_MELS}) "
                f"with P >= 1, got {tuple(x.shape)}"
            )
        x = x.to(self.device, torch.float32)
        chunks: dict[str, list[torch.Tensor]] = {name: [] for name in self.models}
        for start in range(0, x.shape[0], self.batch_size):
            for name, out in self.run(x[start : start + self.batch_size], self.models).items():
                chunks[name].append(out.tag_probs)
        return {name: average_probs(torch.cat(c)) for name, c in chunks.items()}

    @staticmethod
    def tags(
        probs: dict[str, np.ndarray], min_confidence: float = 0.0, top_k: int | None = None
    ) -> list[ModelTag]:
        """``merge_tags``: the models' scores as named tags, strongest first."""
        return merge_tags(probs, min_confidence, top_k)


def model_tags(probs: dict[str, np.ndarray]) -> list[ModelTag]:
    """Every model's every tag as a ``ModelTag`` (canonical name, kind, score, model),
    strongest first: a synonym the two models share appears once per model, so a
    caller can still pick per model (ingest keeps each model's top tags)."""
    tags = []
    for source, values in probs.items():
        names = TAGS[source]
        if len(values) != len(names):
            raise ValueError(f"{source}: expected {len(names)} scores, got {len(values)}")
        tags += [
            ModelTag(canonical_tag(raw), tag_kind(raw), float(value), source)
            for raw, value in zip(names, values, strict=True)
        ]
    return sorted(tags, key=lambda t: (-t.confidence, t.source, t.name))


def merge_tags(
    probs: dict[str, np.ndarray], min_confidence: float = 0.0, top_k: int | None = None
) -> list[ModelTag]:
    """The models' scores as one tag per name, strongest first: the one merging policy.

    Synonyms (see ``canonical_tag``) keep their highest score and the model that
    gave it (the first model given, on a tie); ties in score rank by name;
    ``top_k`` and ``min_confidence`` trim the list. The training captions
    (``training.captions.ranked_tags``) read a clip's tags through this.
    """
    best: dict[str, ModelTag] = {}
    for source in probs:  # model by model, so the first model given wins a tie
        for tag in model_tags({source: probs[source]}):
            if tag.name not in best or tag.confidence > best[tag.name].confidence:
                best[tag.name] = ModelTag(tag.name, tag_kind(tag.name), tag.confidence, source)
    ranked = sorted(best.values(), key=lambda t: (-t.confidence, t.name))
    ranked = [t for t in ranked if t.confidence >= min_confidence]
    return ranked if top_k is None else ranked[:top_k]
