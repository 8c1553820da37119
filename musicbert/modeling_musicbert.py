"""MusicBERT proper: one shared Transformer over audio patches and text tokens.

As in Rossetto & Dalton's MusicBERT, modality-specific encoders feed a single
Transformer. Here the encoders are frozen and live outside this module (musicnn
gives one 200-d vector per ~3 s audio patch, MiniLM gives 384-d token states);
this module projects each to the shared width, adds a modality embedding and a
per-modality position, and runs them alone (audio-only, text-only) or together
(joint: text tokens then audio patches in one sequence). Projection heads map the
pooled states of each modality into one L2-normalised space, like CLAP's
``get_text_features`` / ``get_audio_features``.

``MusicBertForPreTraining`` adds the paper's objectives: masked patch
reconstruction (MLM), InfoNCE between audio and text plus CPC between two
segments of one track (MIM), and multi-label tags (the AudioSet task).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from musicbert import losses
from musicbert.configuration_musicbert import MusicBertConfig

AUDIO, TEXT, CONCEPT = 0, 1, 2  # modality ids
CHECKSUM_FILE = "SHA256SUMS"


@dataclass
class MusicBertOutput(ModelOutput):
    """What one pass of the shared Transformer gives.

    ``audio_embeds`` / ``text_embeds`` are the L2-normalised shared-space vectors of
    the modalities present; the pooled states are their inputs before projection.
    """

    last_hidden_state: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    modality_ids: torch.Tensor | None = None
    audio_pooled: torch.Tensor | None = None
    text_pooled: torch.Tensor | None = None
    audio_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None


@dataclass
class MusicBertPreTrainingOutput(ModelOutput):
    """Total loss, each objective's loss, and the model outputs they came from."""

    loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    contrastive_loss: torch.Tensor | None = None
    cpc_loss: torch.Tensor | None = None
    tag_loss: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    tag_logits: torch.Tensor | None = None
    audio_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None


class MusicBertSelfAttention(nn.Module):
    def __init__(self, config: MusicBertConfig) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = config.attention_dropout_prob

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class MusicBertLayer(nn.Module):
    """A pre-LayerNorm Transformer block (stable to train without warm-up tricks)."""

    def __init__(self, config: MusicBertConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = MusicBertSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = nn.Sequential(
            nn.Linear(config.hidden_size, config.intermediate_size),
            nn.GELU(),
            nn.Linear(config.intermediate_size, config.hidden_size),
        )
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.ln1(x), bias))
        return x + self.dropout(self.mlp(self.ln2(x)))


class MusicBertPreTrainedModel(PreTrainedModel):
    """Shared plumbing: config class, weight init, checksummed saving."""

    config_class = MusicBertConfig
    base_model_prefix = "musicbert"
    supports_gradient_checkpointing = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, MusicBertModel):
            module.mask_embedding.normal_(0.0, std)
        elif isinstance(module, MusicBertForPreTraining):
            module.logit_scale.fill_(self.config.logit_scale_init)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedModel.save_pretrained`` plus a SHA256SUMS file the loader checks."""
        result = super().save_pretrained(save_directory, *args, **kwargs)
        write_checksums(Path(save_directory))
        return result


class MusicBertModel(MusicBertPreTrainedModel):
    """The shared Transformer with its two projection heads.

    Inputs (any of the two, or both for joint mode):
        audio_patches: (B, P, audio_input_dim) musicnn patch vectors;
        audio_mask: (B, P) 1/True for real patches (default: all real);
        text_states: (B, T, text_input_dim) frozen text-tower token states;
        text_mask: (B, T) 1/True for real tokens;
        masked_patches: (B, P) bool, patches replaced by the learned mask vector (MLM);
        concepts: (B, n_concepts) musicnn tag probabilities of the audio, required with
            audio when ``config.concept_tokens`` > 0 (they join the audio side).
    """

    def __init__(self, config: MusicBertConfig) -> None:
        super().__init__(config)
        h = config.hidden_size
        self.audio_input = nn.Sequential(
            nn.LayerNorm(config.audio_input_dim, eps=config.layer_norm_eps),
            nn.Linear(config.audio_input_dim, h),
        )
        self.text_input = nn.Sequential(
            nn.LayerNorm(config.text_input_dim, eps=config.layer_norm_eps),
            nn.Linear(config.text_input_dim, h),
        )
        self.modality_embeddings = nn.Embedding(3 if config.concept_tokens else 2, h)
        if config.concept_tokens:
            # the text tower's reading of each concept's name (set by ``set_concept_states``)
            self.register_buffer(
                "concept_states", torch.zeros(config.n_concepts, config.text_input_dim)
            )
            self.concept_confidence = nn.Linear(1, h)
        self.audio_positions = nn.Embedding(config.max_audio_patches, h)
        self.text_positions = nn.Embedding(config.max_text_tokens, h)
        self.mask_embedding = nn.Parameter(torch.zeros(h))
        self.embed_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layers = nn.ModuleList(MusicBertLayer(config) for _ in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.audio_projection = nn.Linear(h, config.projection_dim, bias=False)
        self.text_projection = nn.Linear(h, config.projection_dim, bias=False)
        self.post_init()

    def _embed_audio(self, patches, mask, masked):
        b, p, _ = patches.shape
        if p > self.config.max_audio_patches:
            raise ValueError(
                f"{p} audio patches exceed max_audio_patches={self.config.max_audio_patches}; "
                "window the track (Embedder does this)"
            )
        x = self.audio_input(patches)
        if masked is not None:
            x = torch.where(masked.unsqueeze(-1), self.mask_embedding.to(x.dtype), x)
        pos = self.audio_positions(torch.arange(p, device=x.device))
        x = x + pos + self.modality_embeddings.weight[AUDIO]
        return x, _as_mask(mask, b, p, x.device)

    def _embed_concepts(self, concepts: torch.Tensor):
        """(B, n_concepts) probabilities -> the top ``concept_tokens`` as (B, K, h) tokens."""
        if concepts.shape[-1] != self.config.n_concepts:
            raise ValueError(
                f"concepts have {concepts.shape[-1]} columns, expected {self.config.n_concepts}"
            )
        values, index = concepts.float().topk(self.config.concept_tokens, dim=-1)
        names = self.text_input(self.concept_states[index].to(self.text_input[1].weight.dtype))
        x = names + self.concept_confidence(values.unsqueeze(-1).to(names.dtype))
        x = x + self.modality_embeddings.weight[CONCEPT]
        return x, torch.ones(values.shape, dtype=torch.bool, device=x.device)

    @torch.no_grad()
    def set_concept_states(self, states: torch.Tensor) -> None:
        """Store the text tower's (n_concepts, text_input_dim) reading of the concept names."""
        self.concept_states.copy_(states.to(self.concept_states))

    def _embed_text(self, states, mask):
        b, t, _ = states.shape
        if t > self.config.max_text_tokens:
            raise ValueError(
                f"{t} text tokens exceed max_text_tokens={self.config.max_text_tokens}"
            )
        x = self.text_input(states)
        pos = self.text_positions(torch.arange(t, device=x.device))
        x = x + pos + self.modality_embeddings.weight[TEXT]
        return x, _as_mask(mask, b, t, x.device)

    def forward(
        self,
        audio_patches: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        text_states: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        masked_patches: torch.Tensor | None = None,
        concepts: torch.Tensor | None = None,
        **kwargs,
    ) -> MusicBertOutput:
        parts, masks, kinds = [], [], []
        if text_states is not None:
            x, m = self._embed_text(text_states, text_mask)
            parts.append(x)
            masks.append(m)
            kinds.append(torch.full(m.shape[1:], TEXT, device=x.device))
        if audio_patches is not None:
            x, m = self._embed_audio(audio_patches, audio_mask, masked_patches)
            parts.append(x)
            masks.append(m)
            kinds.append(torch.full(m.shape[1:], AUDIO, device=x.device))
            if self.config.concept_tokens:
                if concepts is None:
                    raise ValueError(
                        "this MusicBERT reads concepts beside the audio: pass concepts= "
                        "(the musicnn tag probabilities; Embedder does this)"
                    )
                x, m = self._embed_concepts(concepts)
                parts.append(x)
                masks.append(m)
                kinds.append(torch.full(m.shape[1:], CONCEPT, device=x.device))
        if not parts:
            raise ValueError("MusicBertModel needs audio_patches, text_states or both")
        x = self.embed_dropout(torch.cat(parts, 1))
        mask = torch.cat(masks, 1)
        modality = torch.cat(kinds)
        # additive attention bias: padded keys get -inf (a row always has >= 1 real key)
        bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device)
        bias = bias.masked_fill(~mask, torch.finfo(x.dtype).min)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, bias)
        x = self.final_norm(x)

        out = MusicBertOutput(last_hidden_state=x, attention_mask=mask, modality_ids=modality)
        if audio_patches is not None:
            sel = mask & ((modality == AUDIO) | (modality == CONCEPT))
            out.audio_pooled = _masked_mean(x, sel)
            out.audio_embeds = F.normalize(self.audio_projection(out.audio_pooled), dim=-1)
        if text_states is not None:
            sel = mask & (modality == TEXT)
            out.text_pooled = _masked_mean(x, sel)
            out.text_embeds = F.normalize(self.text_projection(out.text_pooled), dim=-1)
        return out

    def get_audio_features(
        self,
        audio_patches: torch.Tensor,
        audio_mask: torch.Tensor | None = None,
        concepts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Audio-only pass -> (B, projection_dim) L2-normalised."""
        return self(
            audio_patches=audio_patches, audio_mask=audio_mask, concepts=concepts
        ).audio_embeds

    def get_text_features(
        self, text_states: torch.Tensor, text_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Text-only pass -> (B, projection_dim) L2-normalised."""
        return self(text_states=text_states, text_mask=text_mask).text_embeds


class MusicBertForPreTraining(MusicBertPreTrainedModel):
    """The shared Transformer plus the heads of the four pretraining objectives.

    Its checkpoint loads into ``MusicBertModel`` (the heads are then dropped).
    """

    def __init__(self, config: MusicBertConfig) -> None:
        super().__init__(config)
        h = config.hidden_size
        self.musicbert = MusicBertModel(config)
        self.reconstruction_head = nn.Sequential(
            nn.Linear(h, h),
            nn.GELU(),
            nn.LayerNorm(h, eps=config.layer_norm_eps),
            nn.Linear(h, config.audio_input_dim),
        )
        self.cpc_predictor = nn.Linear(config.projection_dim, config.projection_dim)
        self.tag_head = nn.Linear(h, config.n_tags)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init)))
        self.post_init()

    def forward(
        self,
        audio_patches: torch.Tensor | None = None,
        audio_mask: torch.Tensor | None = None,
        text_states: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        masked_patches: torch.Tensor | None = None,
        other_segment: torch.Tensor | None = None,
        other_segment_mask: torch.Tensor | None = None,
        tag_targets: torch.Tensor | None = None,
        concepts: torch.Tensor | None = None,
        **kwargs,
    ) -> MusicBertPreTrainingOutput:
        """Each loss is computed when its inputs are given and its weight is non-zero.

        - MLM: ``audio_patches`` + ``masked_patches`` (see ``losses.sample_patch_mask``);
          the audio pass sees the masked input, the head rebuilds the hidden vectors.
        - InfoNCE: ``audio_patches`` + ``text_states`` of matching pairs (row i with row i).
        - CPC: ``other_segment``, another segment of the same track as ``audio_patches``.
        - Tags: ``tag_targets`` (B, n_tags) in [0, 1] (hard labels or soft musicnn scores).
        """
        cfg = self.config
        out = MusicBertPreTrainingOutput()
        terms: list[torch.Tensor] = []
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()
        audio = None
        if audio_patches is not None:
            audio = self.musicbert(
                audio_patches=audio_patches,
                audio_mask=audio_mask,
                masked_patches=masked_patches,
                concepts=concepts,
            )
            out.audio_embeds = audio.audio_embeds
            if masked_patches is not None and cfg.mlm_weight:
                out.reconstruction = self.reconstruction_head(audio.last_hidden_state)
                out.mlm_loss = losses.masked_patch_loss(
                    out.reconstruction, audio_patches, masked_patches
                )
                terms.append(cfg.mlm_weight * out.mlm_loss)
            if tag_targets is not None and cfg.tag_weight:
                out.tag_logits = self.tag_head(audio.audio_pooled)
                out.tag_loss = losses.tag_loss(out.tag_logits, tag_targets)
                terms.append(cfg.tag_weight * out.tag_loss)
            if other_segment is not None and cfg.cpc_weight:
                other = self.musicbert.get_audio_features(
                    other_segment, other_segment_mask, concepts
                )
                out.cpc_loss = losses.cpc_loss(audio.audio_embeds, other, self.cpc_predictor, scale)
                terms.append(cfg.cpc_weight * out.cpc_loss)
        if text_states is not None:
            out.text_embeds = self.musicbert.get_text_features(text_states, text_mask)
            if audio is not None and cfg.contrastive_weight:
                # contrast the clean audio: masked input would make the pair harder to match
                clean = (
                    audio.audio_embeds
                    if masked_patches is None
                    else self.musicbert.get_audio_features(audio_patches, audio_mask, concepts)
                )
                out.contrastive_loss = losses.info_nce(clean, out.text_embeds, scale)
                terms.append(cfg.contrastive_weight * out.contrastive_loss)
        if terms:
            out.loss = torch.stack(terms).sum()
        return out


def write_checksums(directory: Path) -> None:
    """Record the sha256 of every weights file so a corrupted copy is caught at load."""
    lines = []
    for path in sorted(directory.glob("*.safetensors")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.name}\n")
    (directory / CHECKSUM_FILE).write_text("".join(lines))


def _as_mask(mask: torch.Tensor | None, b: int, n: int, device) -> torch.Tensor:
    if mask is None:
        return torch.ones(b, n, dtype=torch.bool, device=device)
    if mask.shape != (b, n):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match inputs ({b}, {n})")
    return mask.to(device=device, dtype=torch.bool)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


def _register_auto_classes() -> None:
    """Let ``AutoConfig`` / ``AutoModel`` open MusicBERT checkpoints like any HF model."""
    from transformers import AutoConfig, AutoModel, AutoModelForPreTraining

    try:
        AutoConfig.register(MusicBertConfig.model_type, MusicBertConfig)
        AutoModel.register(MusicBertConfig, MusicBertModel)
        AutoModelForPreTraining.register(MusicBertConfig, MusicBertForPreTraining)
    except ValueError:  # already registered (module reloaded)
        pass


_register_auto_classes()
