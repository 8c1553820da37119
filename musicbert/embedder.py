"""The embedding API: text and audio into one shared space, from one loaded object.

``Embedder.load()`` reads the packaged checkpoint (musicbert/checkpoints/default/)
or, when there is none yet, builds a randomly initialised model that says so
(``untrained``, a warning, and "untrained" in its ``model_id``). Audio of any
length is streamed: log-mel frames are computed block by block with exact frame
continuity, cut into ~3 s patches (the last one moved back to end on the final
frame so the whole track is covered), encoded by musicnn in batches, and the
patch vectors are run through the shared Transformer in windows of at most
``max_audio_patches`` whose embeddings are averaged. Memory stays bounded by a
block and a window whatever the track's length; nothing is random, so the same
audio always gives the same vector.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from musicbert.audio_io import TARGET_SR, prepare_waveform, stream
from musicbert.checksums import file_sha256, verify_sha256
from musicbert.configuration_musicbert import MusicBertConfig
from musicbert.errors import AudioError, CheckpointError
from musicbert.tagger import ModelTag, Tagger, model_tags
from musicbert.text_tower import TextTower, resolve_text_tower

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"
TAG_MODELS = ("MSD_musicnn", "MTT_musicnn")
SILENCE_PEAK = 1e-4  # -80 dBFS: nothing audible
BLOCK_SECONDS = 30.0


class UntrainedModelWarning(UserWarning):
    """The embedder runs a randomly initialised shared Transformer."""


@dataclass
class AudioDescription:
    """Everything one pass over a track gives.

    ``tags`` holds every tag of every musicnn tagger run (``musicbert.tagger.model_tags``:
    canonical name, kind, patch-averaged probability, source model), most confident
    first; ``tag_probs`` the same numbers per model in the model's output order (what
    the training features cache).
    """

    embedding: np.ndarray
    tags: list[ModelTag] = field(default_factory=list)
    patches: int = 0
    duration: float = 0.0
    silent: bool = False
    tag_probs: dict[str, np.ndarray] = field(default_factory=dict)
    patch_vectors: np.ndarray | None = None  # (patches, 200) with keep_patches=True

    def top_tags(self, n: int = 5, min_confidence: float = 0.0) -> list[ModelTag]:
        return [t for t in self.tags if t.confidence >= min_confidence][:n]


AudioItem = str | Path | tuple[np.ndarray, int]


class Embedder:
    """MusicBERT text and audio embeddings; loads once, then embeds many inputs."""

    def __init__(
        self,
        model,
        text_tower_dir: Path,
        model_id: str,
        device: torch.device,
        checkpoint: Path | None,
        patch_batch: int | None = None,
    ) -> None:
        self.model = model
        self.config: MusicBertConfig = model.config
        self.model_id = model_id
        self.dim: int = int(self.config.projection_dim)
        self.untrained: bool = bool(self.config.untrained)
        self.device = device
        self.checkpoint = checkpoint
        # on CPU a small batch is as fast and keeps musicnn's feature maps (~25 MB per
        # patch) from dominating peak memory
        self.patch_batch = patch_batch or (256 if device.type == "cuda" else 8)
        self.last_truncated: list[bool] = []
        self._text_tower_dir = text_tower_dir
        self._text_tower: TextTower | None = None
        #: musicnn, the one way from log-mel patches to patch vectors and tag scores
        self.tagger = Tagger(models=(), device=device, batch_size=self.patch_batch)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        checkpoint: str | Path | None = None,
        device: str | torch.device | None = None,
    ) -> Embedder:
        """The checkpoint in ``checkpoint`` (default: the packaged one) on ``device``.

        Without a packaged checkpoint: a random model, seed 0, ``untrained`` True, and
        an ``UntrainedModelWarning``. A named checkpoint that is missing or corrupted
        raises ``CheckpointError`` naming the file.
        """
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        path = Path(checkpoint).expanduser() if checkpoint is not None else None
        if path is None and (DEFAULT_CHECKPOINT / "config.json").is_file():
            path = DEFAULT_CHECKPOINT
        if path is None:
            config = MusicBertConfig()
            model = _random_model(config)
            model_id = untrained_model_id(config)
            warnings.warn(
                f"no trained MusicBERT checkpoint in {DEFAULT_CHECKPOINT}: using a randomly "
                f"initialised model ({model_id}); similarities are not meaningful",
                UntrainedModelWarning,
                stacklevel=2,
            )
        else:
            model, model_id = load_checkpoint(path)
        text_dir = resolve_text_tower(model.config.text_tower_id)
        model.eval().requires_grad_(False).to(dev)
        return cls(model, text_dir, model_id, dev, path)

    @property
    def text_tower(self) -> TextTower:
        """The frozen MiniLM tower (384-d sentence embeddings via ``embed``)."""
        if self._text_tower is None:
            self._text_tower = TextTower.load(
                self._text_tower_dir, self.config.text_tower_sha256, self.device
            )
        return self._text_tower

    def musicnn(self, name: str) -> torch.nn.Module:
        return self.tagger.model(name)

    # ------------------------------------------------------------------ text
    def embed_text(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """(n, dim) float32 L2-normalised shared-space vectors.

        Empty text raises ``EmptyTextError``; text over 256 tokens is truncated, with a
        ``TextTruncatedWarning`` and a True in ``last_truncated`` for that text.
        """
        if isinstance(texts, str):
            texts = [texts]
        out, truncated = [], []
        for start in range(0, max(len(texts), 1), batch_size):
            enc = self.text_tower.encode(texts[start : start + batch_size])
            truncated += enc.truncated
            with torch.inference_mode(), self._autocast():
                vec = self.model.get_text_features(enc.token_states, enc.attention_mask.bool())
            out.append(vec.float().cpu())
        self.last_truncated = truncated
        return _normalise(torch.cat(out))

    # ------------------------------------------------------------------ audio
    def embed_audio(self, items: list[AudioItem]) -> np.ndarray:
        """(n, dim) vectors for files or ``(samples, samplerate)`` pairs, whole tracks each."""
        if isinstance(items, (str, Path, tuple)):
            items = [items]
        vectors = [self.describe(item, tags=False).embedding for item in items]
        if not vectors:
            return np.zeros((0, self.dim), np.float32)
        return np.stack(vectors)

    def describe(
        self, item: AudioItem, tags: bool = True, keep_patches: bool = False
    ) -> AudioDescription:
        """``describe_stream`` for a file path or an in-memory ``(samples, samplerate)``."""
        return self.describe_stream(_blocks(item), tags=tags, keep_patches=keep_patches)

    def describe_stream(
        self, blocks: Iterable[np.ndarray], tags: bool = True, keep_patches: bool = False
    ) -> AudioDescription:
        """Embedding and musicnn tags of a track given as mono float32 16 kHz blocks.

        ``tags=False`` skips the second tagger (embedding only, about twice as fast);
        ``keep_patches`` also returns every patch's musicnn vector (the training data of
        the shared Transformer: 200 floats per 3 s, under 1 MB per hour).
        """
        from musicbert.logmel import logmel_stream

        run = _TrackRun(self, tags, keep_patches)
        for frames in logmel_stream(run.watch(blocks)):
            run.add_frames(frames)
        return run.finish()

    # ------------------------------------------------------------------ helpers
    def _autocast(self):
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def audio_window_embedding(
        self, vectors: np.ndarray, concepts: np.ndarray | None = None
    ) -> np.ndarray:
        """One window of patch vectors (P <= max_audio_patches, 200) -> (dim,) vector.

        ``concepts``: the window's mean musicnn tag probabilities (100: MSD then MTT),
        needed by a model with ``concept_tokens``.
        """
        x = torch.from_numpy(np.ascontiguousarray(vectors, np.float32)).to(self.device)
        c = None
        if concepts is not None:
            c = torch.from_numpy(np.asarray(concepts, np.float32)).to(self.device).unsqueeze(0)
        with torch.inference_mode(), self._autocast():
            emb = self.model.get_audio_features(x.unsqueeze(0), concepts=c)
        return emb[0].float().cpu().numpy()


class _TrackRun:
    """The state of one streamed track: frame buffer, patch queue, pooled results."""

    def __init__(self, embedder: Embedder, tags: bool, keep_patches: bool = False) -> None:
        from musicbert.logmel import PATCH_FRAMES

        self.e = embedder
        self.tags = tags
        # a model reading concepts needs both taggers' probabilities for every window
        self.concepts = bool(getattr(embedder.config, "concept_tokens", 0))
        self.win_c: list[np.ndarray] = []
        self.recent_c: deque[np.ndarray] = deque(maxlen=int(embedder.config.max_audio_patches))
        self.kept: list[np.ndarray] | None = [] if keep_patches else None
        self.patch_frames = PATCH_FRAMES
        hop = embedder.config.patch_hop_frames
        self.hop = int(hop) if hop else PATCH_FRAMES
        self.window = int(embedder.config.max_audio_patches)
        self.frames = np.zeros((0, 96), np.float32)  # frames from absolute index self.start
        self.start = 0
        self.total = 0
        self.next_patch = 0  # absolute frame where the next regular patch begins
        self.pending: list[np.ndarray] = []
        self.samples = 0
        self.peak = 0.0
        self.patches = 0
        self.win: list[np.ndarray] = []
        self.recent: deque[np.ndarray] = deque(maxlen=self.window)
        self.full_windows = 0
        self.emb_sum = np.zeros(embedder.dim, np.float64)
        self.weight = 0.0
        self.tag_sums: dict[str, np.ndarray] = {}

    def watch(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            block = np.asarray(block)
            if block.ndim != 1:
                raise AudioError(f"audio blocks must be mono (n,), got shape {block.shape}")
            block = block.astype(np.float32, copy=False)
            if not np.isfinite(block).all():
                raise AudioError("audio contains NaN or infinite samples; re-export the file")
            if block.size:
                self.peak = max(self.peak, float(np.abs(block).max()))
            self.samples += block.size
            yield block

    def add_frames(self, frames: np.ndarray) -> None:
        if not len(frames):
            return
        self.frames = np.concatenate([self.frames, frames]) if len(self.frames) else frames
        self.total += len(frames)
        pf = self.patch_frames
        while self.next_patch + pf <= self.total:
            at = self.next_patch - self.start
            self.pending.append(self.frames[at : at + pf])
            self.next_patch += self.hop
        keep_from = min(self.next_patch, self.total - pf)
        if keep_from > self.start:
            self.frames = self.frames[keep_from - self.start :].copy()
            self.start = keep_from
        if len(self.pending) >= self.e.patch_batch:
            self._flush()

    def finish(self) -> AudioDescription:
        pf = self.patch_frames
        if self.total < pf:  # shorter than one patch: zero-pad (log-mel 0 is silence)
            pad = np.zeros((pf - self.total, self.frames.shape[1]), np.float32)
            self.pending.append(np.concatenate([self.frames, pad]))
        elif self.next_patch - self.hop + pf < self.total:  # cover the tail
            self.pending.append(self.frames[-pf:])
        self._flush()
        if self.win:
            if self.full_windows:  # a short last window: use the last full window's worth
                self._add_window(np.stack(self.recent), len(self.win), self.recent_c)
            else:
                self._add_window(np.stack(self.win), len(self.win), self.win_c)
        emb = self.emb_sum / max(self.weight, 1e-12)
        emb = (emb / max(np.linalg.norm(emb), 1e-12)).astype(np.float32)
        desc = AudioDescription(
            embedding=emb,
            patches=self.patches,
            duration=self.samples / TARGET_SR,
            silent=self.peak < SILENCE_PEAK,
        )
        if self.kept is not None:
            desc.patch_vectors = np.concatenate(self.kept).astype(np.float32)
        if self.tags:
            desc.tag_probs = {
                k: (v / self.patches).astype(np.float32) for k, v in self.tag_sums.items()
            }
            desc.tags = model_tags(desc.tag_probs)
        return desc

    def _flush(self) -> None:
        if not self.pending:
            return
        batch = torch.from_numpy(np.stack(self.pending)).to(self.e.device)
        self.pending = []
        self.patches += len(batch)
        frontend = self.e.config.audio_frontend_id
        tagging = self.tags or self.concepts
        names = [frontend] + [m for m in TAG_MODELS if tagging and m != frontend]
        per_patch: dict[str, np.ndarray] = {}
        with self.e._autocast():
            outs = self.e.tagger.run(batch, names)
        vectors = outs[frontend].penultimate.float().cpu().numpy()
        for name, out in outs.items():
            if tagging and name in TAG_MODELS:
                per_patch[name] = out.tag_probs.float().cpu().numpy().astype(np.float64)
        if self.tags:
            for name, probs in per_patch.items():
                self.tag_sums[name] = self.tag_sums.get(name, 0) + probs.sum(0)
        concepts = (
            np.concatenate([per_patch[m] for m in TAG_MODELS], axis=1)
            if self.concepts
            else [None] * len(vectors)
        )
        if self.kept is not None:
            self.kept.append(vectors)
        for vec, concept in zip(vectors, concepts, strict=True):
            self.win.append(vec)
            self.recent.append(vec)
            self.win_c.append(concept)
            self.recent_c.append(concept)
            if len(self.win) == self.window:
                self._add_window(np.stack(self.win), self.window, self.win_c)
                self.full_windows += 1
                self.win, self.win_c = [], []

    def _add_window(self, vectors: np.ndarray, weight: float, concepts) -> None:
        mean_concepts = np.mean(np.stack(list(concepts)), 0) if self.concepts else None
        emb = self.e.audio_window_embedding(vectors, mean_concepts)
        self.emb_sum += weight * emb.astype(np.float64)
        self.weight += weight


def _blocks(item: AudioItem) -> Iterator[np.ndarray]:
    if isinstance(item, tuple):
        if len(item) != 2:
            raise AudioError("an in-memory waveform must be given as (samples, samplerate)")
        samples, sr = item
        wave = prepare_waveform(np.asarray(samples), int(sr))
        if wave.size == 0:
            raise AudioError("waveform has no samples")
        step = int(BLOCK_SECONDS * TARGET_SR)
        return (wave[i : i + step] for i in range(0, wave.size, step))
    if isinstance(item, (str, Path)):
        return stream(item, TARGET_SR, BLOCK_SECONDS)
    raise AudioError(
        f"cannot embed audio from a {type(item).__name__}; give a path or (samples, sr)"
    )


def _normalise(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x.float(), dim=-1).numpy().astype(np.float32)


def _random_model(config: MusicBertConfig):
    from musicbert.modeling_musicbert import MusicBertModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.init_seed)
        return MusicBertModel(config)


def untrained_model_id(config: MusicBertConfig) -> str:
    """An id naming the random initialisation: seed plus a digest of the architecture."""
    arch = config.to_json_string(use_diff=False)
    digest = hashlib.sha256(arch.encode()).hexdigest()[:8]
    return f"musicbert-untrained-seed{config.init_seed}-{digest}"


def load_checkpoint(path: Path):
    """(MusicBertModel, model_id) from a checkpoint directory; ``CheckpointError`` if unusable."""
    from musicbert.modeling_musicbert import CHECKSUM_FILE, MusicBertModel

    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint directory not found")
    config_file, weights = path / "config.json", path / "model.safetensors"
    for needed in (config_file, weights):
        if not needed.is_file():
            raise CheckpointError(f"{needed}: missing from the checkpoint")
    sums = path / CHECKSUM_FILE
    if sums.is_file():
        for line in sums.read_text().splitlines():
            if line.strip():
                digest, _, name = line.strip().partition("  ")
                verify_sha256(path / name, digest)
    try:
        config = MusicBertConfig.from_pretrained(path)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{config_file}: unreadable MusicBERT config ({exc})") from exc
    try:
        model, info = MusicBertModel.from_pretrained(path, config=config, output_loading_info=True)
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{weights}: cannot load the weights ({exc})") from exc
    if info.get("missing_keys") or info.get("mismatched_keys"):
        missing = sorted(info.get("missing_keys") or []) + [
            str(k) for k in info.get("mismatched_keys") or []
        ]
        raise CheckpointError(f"{weights}: weights missing or of the wrong shape: {missing[:3]}")
    return model, f"musicbert-{file_sha256(weights)[:12]}"
