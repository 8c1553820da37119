"""Batches for pretraining, made from the feature cache; a pure function of position.

Everything random about a batch (the order of an epoch, which segment of a clip
is the anchor and which the CPC partner, which text is its pair, which patches
are masked) is drawn from generators seeded by ``(seed, epoch, batch, rank)``.
A batch is therefore the same whether training ran in one go or was resumed,
which is what makes exact resume possible without replaying the data.
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

    def batch(self, step: int) -> Batch:
        epoch, b = self.position(step)
        order = np.random.default_rng((self.seed, epoch)).permutation(self.indices)
        mine = order[self.rank :: self.world_size][: self.per_rank]
        chosen = mine[b * self.batch_size : (b + 1) * self.batch_size]
        if len(chosen) < self.batch_size:  # fewer items than a batch: wrap around
            chosen = np.resize(mine, self.batch_size)
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
        )
