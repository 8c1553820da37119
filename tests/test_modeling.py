"""The shared Transformer: modes, shapes, masking, pretraining, save/load round trips."""

from __future__ import annotations

import json

import pytest
import torch

from musicbert import losses
from musicbert.configuration_musicbert import MINILM_SHA256, MusicBertConfig
from musicbert.modeling_musicbert import CHECKSUM_FILE, MusicBertForPreTraining, MusicBertModel

pytestmark = pytest.mark.usefixtures("one_thread")


def small_config(**kw) -> MusicBertConfig:
    base = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        projection_dim=16,
        max_audio_patches=12,
        max_text_tokens=10,
        n_tags=6,
        hidden_dropout_prob=0.0,
        attention_dropout_prob=0.0,
    )
    base.update(kw)
    return MusicBertConfig(**base)


def batch(b=4, p=8, t=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    audio = torch.randn(b, p, 200, generator=gen)
    audio_mask = torch.ones(b, p, dtype=torch.bool)
    audio_mask[0, 5:] = False
    text = torch.randn(b, t, 384, generator=gen)
    text_mask = torch.ones(b, t, dtype=torch.bool)
    text_mask[min(1, b - 1), 3:] = False
    return audio, audio_mask, text, text_mask


def test_defaults_are_documented_values():
    cfg = MusicBertConfig()
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (256, 4, 4)
    assert (cfg.audio_input_dim, cfg.text_input_dim, cfg.projection_dim) == (200, 384, 256)
    assert cfg.untrained is True
    assert cfg.text_tower_sha256 == MINILM_SHA256
    assert cfg.audio_frontend_id == "MSD_musicnn"
    with pytest.raises(ValueError):
        MusicBertConfig(hidden_size=30, num_attention_heads=4)


def test_audio_text_and_joint_modes_give_normalised_embeddings():
    model = MusicBertModel(small_config()).eval()
    audio, am, text, tm = batch()
    a = model.get_audio_features(audio, am)
    t = model.get_text_features(text, tm)
    assert a.shape == t.shape == (4, 16)
    assert torch.allclose(a.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert torch.allclose(t.norm(dim=-1), torch.ones(4), atol=1e-5)
    joint = model(audio_patches=audio, audio_mask=am, text_states=text, text_mask=tm)
    assert joint.last_hidden_state.shape == (4, 6 + 8, 32)
    assert joint.modality_ids.tolist() == [1] * 6 + [0] * 8
    # in joint mode each modality sees the other, so its vector changes
    assert not torch.allclose(joint.audio_embeds, a, atol=1e-4)
    with pytest.raises(ValueError):
        model()


def test_padding_does_not_change_the_embedding():
    model = MusicBertModel(small_config()).eval()
    audio, _, text, _ = batch(b=1)
    short = model.get_audio_features(audio[:, :5])
    padded = torch.cat([audio[:, :5], torch.randn(1, 3, 200)], 1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    assert torch.allclose(short, model.get_audio_features(padded, mask), atol=1e-5)


def test_masked_patches_are_replaced_by_the_mask_vector():
    model = MusicBertModel(small_config()).eval()
    audio, am, _, _ = batch()
    masked = torch.zeros(4, 8, dtype=torch.bool)
    masked[:, 2] = True
    changed = audio.clone()
    changed[:, 2] += 50.0  # what a hidden patch held must not matter
    out1 = model(audio_patches=audio, audio_mask=am, masked_patches=masked)
    out2 = model(audio_patches=changed, audio_mask=am, masked_patches=masked)
    assert torch.allclose(out1.last_hidden_state, out2.last_hidden_state, atol=1e-5)


def test_too_many_patches_is_a_clear_error():
    model = MusicBertModel(small_config())
    with pytest.raises(ValueError, match="max_audio_patches"):
        model.get_audio_features(torch.randn(1, 13, 200))


def test_pretraining_losses_are_finite_and_drop_when_overfitting():
    torch.manual_seed(0)
    model = MusicBertForPreTraining(small_config())
    audio, am, text, tm = batch()
    other, _, _, _ = batch(seed=1)
    tags = (torch.rand(4, 6) > 0.5).float()
    masked = losses.sample_patch_mask(am, 0.3, torch.Generator().manual_seed(0))
    inputs = dict(
        audio_patches=audio,
        audio_mask=am,
        text_states=text,
        text_mask=tm,
        masked_patches=masked,
        other_segment=other,
        tag_targets=tags,
    )
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = model(**inputs)
    names = ("mlm_loss", "contrastive_loss", "cpc_loss", "tag_loss")
    for name in names:
        assert torch.isfinite(getattr(first, name)), name
    assert first.reconstruction.shape == (4, 8, 200)
    assert first.tag_logits.shape == (4, 6)
    for _ in range(40):
        opt.zero_grad()
        out = model(**inputs)
        out.loss.backward()
        opt.step()
    last = model(**inputs)
    assert last.loss.item() < 0.5 * first.loss.item()
    for name in names:
        assert getattr(last, name).item() < getattr(first, name).item(), name


def test_a_zero_weight_switches_a_loss_off():
    model = MusicBertForPreTraining(small_config(mlm_weight=0.0, tag_weight=0.0))
    audio, am, text, tm = batch()
    masked = losses.sample_patch_mask(am, 0.3)
    out = model(
        audio_patches=audio,
        audio_mask=am,
        text_states=text,
        text_mask=tm,
        masked_patches=masked,
        tag_targets=torch.zeros(4, 6),
    )
    assert out.mlm_loss is None and out.tag_loss is None
    assert out.loss.item() == pytest.approx(out.contrastive_loss.item())


def test_save_and_load_round_trip_without_the_frozen_towers(tmp_path):
    torch.manual_seed(0)
    pre = MusicBertForPreTraining(small_config()).eval()
    pre.save_pretrained(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["config.json", "model.safetensors", CHECKSUM_FILE])
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["text_tower_sha256"] == MINILM_SHA256
    assert config["audio_frontend_id"] == "MSD_musicnn"
    # the checkpoint is only the shared Transformer: far smaller than MiniLM's 90 MB
    assert (tmp_path / "model.safetensors").stat().st_size < 2_000_000
    sums = (tmp_path / CHECKSUM_FILE).read_text()
    assert "model.safetensors" in sums

    again = MusicBertForPreTraining.from_pretrained(tmp_path).eval()
    base = MusicBertModel.from_pretrained(tmp_path).eval()
    audio, am, text, tm = batch()
    want = pre.musicbert.get_audio_features(audio, am)
    assert torch.allclose(want, again.musicbert.get_audio_features(audio, am), atol=1e-6)
    assert torch.allclose(want, base.get_audio_features(audio, am), atol=1e-6)
    assert torch.allclose(
        pre.musicbert.get_text_features(text, tm), base.get_text_features(text, tm), atol=1e-6
    )


def test_auto_classes_open_a_checkpoint(tmp_path):
    from transformers import AutoConfig, AutoModel

    MusicBertModel(small_config()).save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), MusicBertConfig)
    assert isinstance(AutoModel.from_pretrained(tmp_path), MusicBertModel)


def test_concept_tokens_join_the_audio_side_and_are_saved(tmp_path):
    """The paper's concepts: top-k tag probabilities become tokens beside the patches."""
    config = small_config(concept_tokens=3)
    torch.manual_seed(0)
    model = MusicBertModel(config).eval()
    model.set_concept_states(torch.randn(100, 384))
    audio = torch.randn(2, 4, 200)
    concepts = torch.rand(2, 100)
    out = model(audio_patches=audio, concepts=concepts)
    # 4 patches + 3 concept tokens, all pooled into the audio embedding
    assert out.last_hidden_state.shape[1] == 7 and out.audio_embeds.shape == (2, 16)
    assert out.modality_ids.tolist() == [0, 0, 0, 0, 2, 2, 2]
    # only the top 3 concepts matter: changing a low one leaves the vector as it was
    low = concepts.clone()
    low[:, concepts[0].argsort()[0]] = 0.0
    assert torch.allclose(model(audio_patches=audio, concepts=low).audio_embeds, out.audio_embeds)
    high = concepts.clone()
    high[:, concepts[0].argmax()] = 0.0
    assert not torch.allclose(
        model(audio_patches=audio, concepts=high).audio_embeds[0], out.audio_embeds[0]
    )
    with pytest.raises(ValueError, match="concepts"):
        model(audio_patches=audio)
    with pytest.raises(ValueError, match="columns"):
        model(audio_patches=audio, concepts=torch.rand(2, 50))
    text = model.get_text_features(torch.randn(2, 5, 384))  # text needs no concepts
    assert text.shape == (2, 16)
    model.save_pretrained(tmp_path)
    again = MusicBertModel.from_pretrained(tmp_path).eval()
    assert torch.equal(again.concept_states, model.concept_states)
    assert torch.allclose(
        again(audio_patches=audio, concepts=concepts).audio_embeds, out.audio_embeds
    )


def test_concept_pretraining_passes_concepts_to_every_audio_pass():
    config = small_config(concept_tokens=2, mlm_weight=1.0, tag_weight=1.0)
    model = MusicBertForPreTraining(config)
    out = model(
        audio_patches=torch.randn(3, 4, 200),
        masked_patches=torch.tensor([[True, False, False, False]] * 3),
        text_states=torch.randn(3, 5, 384),
        other_segment=torch.randn(3, 2, 200),
        tag_targets=torch.rand(3, 6),
        concepts=torch.rand(3, 100),
    )
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.musicbert.concept_confidence.weight.grad is not None
