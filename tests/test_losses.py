"""The pretraining losses on small random batches: finite, right shape, learnable."""

from __future__ import annotations

import pytest
import torch

from musicbert import losses

pytestmark = pytest.mark.usefixtures("one_thread")


def test_patch_mask_never_hides_padding_and_keeps_one_visible():
    gen = torch.Generator().manual_seed(0)
    valid = torch.ones(64, 10, dtype=torch.bool)
    valid[:, 7:] = False
    valid[0, 1:] = False  # a one-patch sequence
    mask = losses.sample_patch_mask(valid, 0.5, gen)
    assert not (mask & ~valid).any()
    assert mask.any(1).all()  # every sequence has a hidden patch
    assert (valid[1:] & ~mask[1:]).any(1).all()  # and multi-patch ones a visible one
    rate = mask[1:, :7].float().mean().item()
    assert 0.35 < rate < 0.65


def test_patch_mask_is_reproducible_with_a_generator():
    valid = torch.ones(4, 20, dtype=torch.bool)
    a = losses.sample_patch_mask(valid, 0.15, torch.Generator().manual_seed(3))
    b = losses.sample_patch_mask(valid, 0.15, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_masked_patch_loss_counts_only_hidden_patches():
    target = torch.randn(2, 5, 8)
    pred = target.clone()
    masked = torch.zeros(2, 5, dtype=torch.bool)
    masked[0, 1] = True
    pred[0, 2] += 100.0  # wrong but visible: ignored
    assert losses.masked_patch_loss(pred, target, masked).item() == 0.0
    pred[0, 1] += 2.0
    assert losses.masked_patch_loss(pred, target, masked).item() == pytest.approx(4.0)


def test_masked_patch_loss_uses_the_audio_tail_of_a_joint_sequence():
    target = torch.randn(1, 3, 4)
    pred = torch.cat([torch.full((1, 2, 4), 9.0), target], 1)  # 2 text positions first
    masked = torch.ones(1, 3, dtype=torch.bool)
    assert losses.masked_patch_loss(pred, target, masked).item() == 0.0


def test_info_nce_is_low_for_matched_pairs_and_high_for_shuffled():
    x = torch.nn.functional.normalize(torch.randn(16, 32), dim=-1)
    matched = losses.info_nce(x, x, 20.0)
    shuffled = losses.info_nce(x, x.roll(1, 0), 20.0)
    assert matched.item() < 0.1 < shuffled.item()
    with pytest.raises(ValueError):
        losses.info_nce(x, x[:4])


def test_tag_loss_accepts_soft_targets_and_checks_shapes():
    logits = torch.zeros(3, 5)
    assert losses.tag_loss(logits, torch.full((3, 5), 0.5)).item() == pytest.approx(0.6931, 1e-3)
    with pytest.raises(ValueError):
        losses.tag_loss(logits, torch.zeros(3, 4))


@pytest.mark.parametrize("which", ["info_nce", "cpc", "tags", "mlm"])
def test_each_loss_decreases_when_overfitting_a_tiny_batch(which):
    torch.manual_seed(0)
    a = torch.randn(8, 16)
    b = torch.randn(8, 16)
    enc_a, enc_b = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)
    predictor = torch.nn.Linear(16, 16)
    targets = (torch.rand(8, 16) > 0.5).float()
    recon_target = torch.randn(8, 4, 16)
    masked = torch.rand(8, 4) < 0.5
    masked[:, 0] = True
    params = [*enc_a.parameters(), *enc_b.parameters(), *predictor.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)

    def loss_fn():
        za = torch.nn.functional.normalize(enc_a(a), dim=-1)
        zb = torch.nn.functional.normalize(enc_b(b), dim=-1)
        if which == "info_nce":
            return losses.info_nce(za, zb, 10.0)
        if which == "cpc":
            return losses.cpc_loss(za, zb, predictor, 10.0)
        if which == "tags":
            return losses.tag_loss(enc_a(a), targets)
        pred = enc_a(recon_target)
        return losses.masked_patch_loss(pred, recon_target * 0.5, masked)

    first = loss_fn()
    assert torch.isfinite(first)
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < 0.5 * first.item()
