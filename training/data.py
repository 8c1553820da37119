"""Batches for pretraining, made from the feature cache; a pure function of position.

Everything random about a batch (the order of an epoch, which segment of a clip
is the anchor and which the CPC partner, which text is its pair, which patches
are masked) is drawn from generators seeded by ``(seed, epoch, batch, rank)``.
A batch is therefore the same whether training ran in one go or was resumed,
which is what makes exact resume possible without replaying the data.

Two batchers with the same semantics: ``Batcher`` assembles each batch in numpy on
the host (simple, the reference), ``DeviceBatcher`` copies the cache to the
training device once and assembles each batch there with a few tensor ops (no
per-item Python, no host-device synchronisation), which is what keeps a GPU fed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from musicbert.losses import sample_patch_mask
from training.features import FeatureCache

MAX_SEGMENT = 8  # patches per segment (~24 s): anchor and CPC partner each


@dataclass
class Batch:
    audio: torch.Tensor  # (B, P, 200)
    audio_mask: torch.Tensor  # (B, P) bool
    masked: torch.Tensor  # (B, P) bool, patches hidden for reconstruction
    other: torch.Tensor  # (B, P2, 200) another segment of the same item (CPC)
    other_mask: torch.Tensor
    text: torch.Tensor  # (B, T, 384)
    text_mask: torch.Tensor
    tag_targets: torch.Tensor  # (B, n_tags)
    concepts: torch.Tensor  # (B, 100) musicnn tag probabilities (MSD 50 then MTT 50) of each item

    def to(self, device) -> Batch:
        return Batch(**{k: v.to(device) for k, v in self.__dict__.items()})


def _pad(rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(r) for r in rows)
    out = np.zeros((len(rows), n, rows[0].shape[1]), np.float32)
    mask = np.zeros((len(rows), n), bool)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        mask[i, : len(r)] = True
    return torch.from_numpy(out), torch.from_numpy(mask)


def split_segments(n: int, rng: np.random.Generator, max_len: int = MAX_SEGMENT):
    """Two disjoint, adjacent segments (start, stop) of an item of ``n`` patches.

    A single-patch item gives the same patch twice (nothing else exists).
    """
    if n < 2:
        return (0, 1), (0, 1)
    cut = int(rng.integers(1, n))
    a = (max(0, cut - max_len), cut)
    b = (cut, min(n, cut + max_len))
    return (a, b) if rng.random() < 0.5 else (b, a)


class Batcher:
    """Deterministic batches of the items ``indices`` of ``cache`` for one rank."""

    def __init__(
        self,
        cache: FeatureCache,
        indices: list[int],
        batch_size: int,
        seed: int,
        mask_probability: float = 0.15,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not indices:
            raise ValueError("no training items")
        if batch_size < 2:
            raise ValueError("batch_size must be at least 2 (contrastive losses need negatives)")
        self.cache = cache
        self.indices = np.asarray(indices)
        self.batch_size = batch_size
        self.seed = seed
        self.mask_probability = mask_probability
        self.rank = rank
        self.world_size = world_size
        # every rank sees the same number of batches per epoch (DDP needs it)
        self.per_rank = len(self.indices) // world_size
        self.batches_per_epoch = max(1, self.per_rank // batch_size)

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batch within epoch) of global ``step``."""
        return divmod(step, self.batches_per_epoch)

    def _epoch_items(self, epoch: int) -> np.ndarray:
        """This rank's items of ``epoch``, in order (the same on every rank's view)."""
        order = np.random.default_rng((self.seed, epoch)).permutation(self.indices)
        return order[self.rank :: self.world_size][: self.per_rank]

    def _chosen(self, mine: np.ndarray, b: int) -> np.ndarray:
        chosen = mine[b * self.batch_size : (b + 1) * self.batch_size]
        if len(chosen) < self.batch_size:  # fewer items than a batch: wrap around
            chosen = np.resize(mine, self.batch_size)
        return chosen

    def batch(self, step: int) -> Batch:
        epoch, b = self.position(step)
        chosen = self._chosen(self._epoch_items(epoch), b)
        rng = np.random.default_rng((self.seed, epoch, b, self.rank))
        anchors, others, texts, targets = [], [], [], []
        for i in chosen:
            item = self.cache.items[int(i)]
            patches = self.cache.item_patches(int(i)).astype(np.float32)
            (a0, a1), (b0, b1) = split_segments(len(patches), rng)
            anchors.append(patches[a0:a1])
            others.append(patches[b0:b1])
            texts.append(self.cache.text_state(int(rng.choice(item.texts))).astype(np.float32))
            targets.append(np.asarray(item.tag_target, np.float32))
        audio, audio_mask = _pad(anchors)
        other, other_mask = _pad(others)
        text, text_mask = _pad(texts)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        masked = sample_patch_mask(audio_mask, self.mask_probability, gen)
        return Batch(
            audio,
            audio_mask,
            masked,
            other,
            other_mask,
            text,
            text_mask,
            torch.from_numpy(np.stack(targets)),
            torch.from_numpy(self.cache.tag_probs[chosen].astype(np.float32)),
        )


def device_patch_mask(valid: torch.Tensor, probability: float, draw: torch.Tensor) -> torch.Tensor:
    """``musicbert.losses.sample_patch_mask`` without a Python loop, from given uniforms.

    ``valid`` (B, P) bool; ``draw`` (B, P) uniform in [0, 1). Each real patch is
    hidden when its draw is below ``probability``; a row with a real patch but none
    hidden hides the real patch of smallest draw; a row of two or more real patches
    all hidden shows again the one of largest draw. Padding is never hidden.
    """
    mask = (draw < probability) & valid
    cols = torch.arange(valid.shape[1], device=valid.device)
    pick = draw.masked_fill(~valid, 2.0).argmin(1, keepdim=True)
    none = valid.any(1, keepdim=True) & ~mask.any(1, keepdim=True)
    mask = mask | (none & (cols == pick))
    keep = draw.masked_fill(~valid, -1.0).argmax(1, keepdim=True)
    every = (valid.sum(1, keepdim=True) >= 2) & (mask == valid).all(1, keepdim=True)
    return mask & ~(every & (cols == keep))


class DeviceBatcher(Batcher):
    """``Batcher``'s batches, assembled on ``device`` from a copy of the cache kept there.

    The cache goes to the device once: patches and text token states stay fp16 (cast
    to float32 per batch), with per-item offsets and lengths, per-text offsets and
    lengths, each item's usable text ids padded into one tensor, tag targets and tag
    probabilities. A batch is then gathered by index arithmetic: fixed shapes
    (B, P, 200) with P = the longest segment the items allow (at most MAX_SEGMENT),
    (B, T, 384) with T = the longest usable text of the items, so nothing waits for
    the device. The epoch order is ``Batcher``'s (the same items in the same batches);
    the rest (segments, texts, masks) comes from a generator on the device seeded by
    ``(seed, step, rank)``: a batch is a pure function of the step on a given device
    type, though not bit-identical to ``Batcher``'s, nor between CPU and CUDA.
    """

    def __init__(
        self,
        cache: FeatureCache,
        indices: list[int],
        batch_size: int,
        seed: int,
        mask_probability: float = 0.15,
        rank: int = 0,
        world_size: int = 1,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(cache, indices, batch_size, seed, mask_probability, rank, world_size)
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        items = cache.items
        lengths = np.asarray([it.n_patches for it in items], np.int64)
        n_texts = np.asarray([len(it.texts) for it in items], np.int64)
        used = self.indices
        if (lengths[used] < 1).any() or (n_texts[used] < 1).any():
            bad = [items[int(i)].item_id for i in used if lengths[i] < 1 or n_texts[i] < 1]
            raise ValueError(f"items without patches or texts cannot be trained on: {bad[:5]}")
        text_ids = np.zeros((len(items), int(n_texts.max())), np.int64)
        for i, it in enumerate(items):
            text_ids[i, : len(it.texts)] = it.texts
        text_offsets = np.asarray(cache.text_offsets, np.int64)
        text_len = np.diff(text_offsets)

        def put(array, dtype=None) -> torch.Tensor:
            t = torch.as_tensor(np.ascontiguousarray(array))
            return t.to(device=device, dtype=dtype or t.dtype)

        self.patches = put(cache.patches, torch.float16)
        self.item_offset = put([it.offset for it in items], torch.int64)
        self.item_len = put(lengths)
        self.text_states = put(cache.text_states, torch.float16)
        self.text_offset = put(text_offsets[:-1])
        self.text_len = put(text_len)
        self.item_texts = put(text_ids)
        self.item_n_texts = put(n_texts)
        self.tag_targets = put(np.asarray([it.tag_target for it in items]), torch.float32)
        self.tag_probs = put(cache.tag_probs, torch.float16)
        # static shapes: the longest segment and the longest text any used item can give
        self.max_patches = min(MAX_SEGMENT, max(1, int(lengths[used].max()) - 1))
        usable = np.concatenate([text_ids[i, : n_texts[i]] for i in used])
        self.max_tokens = max(1, int(text_len[usable].max()))
        self._epoch = (-1, None)
        self.generator = torch.Generator(device=device)

    def _device_items(self, epoch: int) -> torch.Tensor:
        if self._epoch[0] != epoch:  # one small upload per epoch
            mine = self._epoch_items(epoch)
            if len(mine) < self.batch_size:
                mine = np.resize(mine, self.batch_size)
            host = torch.as_tensor(mine, dtype=torch.int64)
            if self.device.type == "cuda":  # pinned, so the copy does not wait for the GPU
                host = host.pin_memory()
            self._epoch = (epoch, host.to(self.device, non_blocking=True))
        return self._epoch[1]

    def _seed(self, step: int) -> int:
        seq = np.random.SeedSequence((self.seed, step, self.rank))
        return int(seq.generate_state(1, np.uint64)[0] % 2**63)

    def batch(self, step: int) -> Batch:
        epoch, b = self.position(step)
        chosen = self._device_items(epoch)[b * self.batch_size : (b + 1) * self.batch_size]
        dev, p, t = self.device, self.max_patches, self.max_tokens
        g = self.generator.manual_seed(self._seed(step))
        u = torch.rand((self.batch_size, 3 + p), generator=g, device=dev)

        # segments: cut uniform in [1, n-1], anchor and partner either side of it
        n = self.item_len[chosen]
        cut = (1 + (u[:, 0] * (n - 1)).long()).clamp(max=(n - 1).clamp(min=1))
        lo = (cut - MAX_SEGMENT).clamp(min=0), cut
        hi = cut, torch.minimum(n, cut + MAX_SEGMENT)
        single = n < 2  # one patch: the same patch twice
        hi = hi[0].masked_fill(single, 0), hi[1].masked_fill(single, 1)
        swap = u[:, 1] < 0.5
        a0, a1 = torch.where(swap, hi[0], lo[0]), torch.where(swap, hi[1], lo[1])
        b0, b1 = torch.where(swap, lo[0], hi[0]), torch.where(swap, lo[1], hi[1])
        base = self.item_offset[chosen]
        audio, audio_mask = self._gather(self.patches, base + a0, a1 - a0, p)
        other, other_mask = self._gather(self.patches, base + b0, b1 - b0, p)

        # one of the item's usable texts, uniformly
        k = (u[:, 2] * self.item_n_texts[chosen]).long()
        k = torch.minimum(k, self.item_n_texts[chosen] - 1)
        text_id = self.item_texts[chosen].gather(1, k[:, None])[:, 0]
        text, text_mask = self._gather(
            self.text_states, self.text_offset[text_id], self.text_len[text_id], t
        )
        masked = device_patch_mask(audio_mask, self.mask_probability, u[:, 3:])
        return Batch(
            audio,
            audio_mask,
            masked,
            other,
            other_mask,
            text,
            text_mask,
            self.tag_targets[chosen],
            self.tag_probs[chosen].float(),
        )

    @staticmethod
    def _gather(
        rows: torch.Tensor, start: torch.Tensor, length: torch.Tensor, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``start .. start+length`` of ``rows`` per batch entry, zero-padded to ``width``."""
        pos = torch.arange(width, device=rows.device)
        mask = pos < length[:, None]
        index = torch.where(mask, start[:, None] + pos, 0)
        out = rows[index].float().masked_fill_(~mask[..., None], 0.0)
        return out, mask
