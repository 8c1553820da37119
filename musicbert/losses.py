"""The pretraining objectives, as plain functions of tensors.

Kept apart from the model so each can be tested on small random batches and
combined freely by the training loop (the paper compares them alone and mixed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_patch_mask(
    valid: torch.Tensor, probability: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Choose patches to hide for masked reconstruction.

    ``valid`` (B, P) marks real patches. Each real patch is hidden with
    ``probability``; padding is never hidden; every sequence with at least two
    real patches gets at least one hidden and at least one visible, so the loss
    is defined and the task is not trivially impossible.
    """
    valid = valid.bool()
    draw = torch.rand(valid.shape, generator=generator, device="cpu").to(valid.device)
    mask = (draw < probability) & valid
    counts = valid.sum(1)
    for row in range(valid.shape[0]):
        real = valid[row].nonzero().flatten()
        if real.numel() == 0:
            continue
        if not mask[row].any():
            pick = real[int(draw[row, real].argmin())]
            mask[row, pick] = True
        if counts[row] >= 2 and mask[row, real].all():
            keep = real[int(draw[row, real].argmax())]
            mask[row, keep] = False
    return mask


def masked_patch_loss(
    prediction: torch.Tensor, target: torch.Tensor, masked: torch.Tensor
) -> torch.Tensor:
    """Mean squared error between rebuilt and true patch vectors, on hidden patches only.

    ``prediction`` and ``target`` are (B, P, D); ``masked`` (B, P) bool. Positions of
    other modalities in ``prediction`` (joint sequences) are ignored by taking the
    last P positions, where the audio patches sit.
    """
    prediction = prediction[:, -target.shape[1] :]
    if not masked.any():
        return prediction.sum() * 0.0
    diff = prediction[masked] - target[masked].to(prediction.dtype)
    return diff.pow(2).mean()


def info_nce(
    queries: torch.Tensor,
    keys: torch.Tensor,
    logit_scale: torch.Tensor | float = 1 / 0.07,
    symmetric: bool = True,
) -> torch.Tensor:
    """InfoNCE: row i of ``queries`` should pick row i of ``keys`` among all rows.

    Both are (B, D), L2-normalised. ``logit_scale`` is the inverse temperature.
    Symmetric (CLIP-style, audio->text and text->audio) unless told otherwise.
    """
    if queries.shape != keys.shape:
        raise ValueError(f"queries {tuple(queries.shape)} and keys {tuple(keys.shape)} differ")
    logits = logit_scale * queries @ keys.t()
    labels = torch.arange(len(queries), device=queries.device)
    loss = F.cross_entropy(logits, labels)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.t(), labels))
    return loss


def cpc_loss(
    context: torch.Tensor,
    future: torch.Tensor,
    predictor: torch.nn.Module | None = None,
    logit_scale: torch.Tensor | float = 1 / 0.07,
) -> torch.Tensor:
    """CPC between segments of one track: predict segment B's vector from segment A's.

    Row i of ``context`` and ``future`` come from the same track; the other rows of
    the batch (other tracks) are the negatives.
    """
    predicted = context if predictor is None else F.normalize(predictor(context), dim=-1)
    return info_nce(predicted, future, logit_scale, symmetric=False)


def tag_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Multi-label binary cross-entropy; targets may be 0/1 or soft scores in [0, 1]."""
    if logits.shape != targets.shape:
        raise ValueError(f"tag logits {tuple(logits.shape)} vs targets {tuple(targets.shape)}")
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))
