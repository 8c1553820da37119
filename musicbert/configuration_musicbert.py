"""The MusicBERT configuration: one place that says what a checkpoint is.

A checkpoint is ``config.json`` + ``model.safetensors`` holding only the shared
Transformer and its heads. The frozen towers feeding it (MiniLM for text, musicnn
for audio) are *referenced* here by id and sha256, never copied, so a checkpoint
stays small and cannot silently pair with the wrong encoder.
"""

from __future__ import annotations

from transformers import PretrainedConfig

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class MusicBertConfig(PretrainedConfig):
    """Hyper-parameters of the shared Transformer, its inputs and its heads.

    Args:
        hidden_size: width of the shared Transformer (256).
        num_hidden_layers: Transformer blocks (4).
        num_attention_heads: heads per block (4); must divide ``hidden_size``.
        intermediate_size: MLP width inside each block (4 x hidden = 1024).
        hidden_dropout_prob / attention_dropout_prob: dropout while training (0.1).
        layer_norm_eps: LayerNorm epsilon (1e-6).
        initializer_range: std of the normal init of linear / embedding weights (0.02).
        audio_input_dim: size of one audio patch vector: musicnn's penultimate layer (200).
        text_input_dim: size of one text token state: MiniLM's hidden size (384).
        projection_dim: size of the shared, L2-normalised embedding space (256).
        max_audio_patches: audio positions per sequence; longer tracks are windowed (64,
            about 3 minutes of non-overlapping 3 s patches).
        max_text_tokens: text positions per sequence (256, MiniLM's max_seq_length).
        n_tags: outputs of the multi-label tag head (50, the size of musicnn's vocabularies).
        mask_probability: share of audio patches hidden for masked reconstruction (0.15).
        logit_scale_init: initial inverse temperature of the contrastive losses, as
            ``ln(1/0.07)`` in CLIP.
        mlm_weight / contrastive_weight / cpc_weight / tag_weight: weights of the four
            pretraining losses in the total; 0 switches one off.
        untrained: True for randomly initialised weights; a trained export sets it False.
        init_seed: seed of the random initialisation (identifies an untrained model).
        text_tower_id / text_tower_sha256: the frozen text encoder and the sha256 of its
            ``model.safetensors``; the id of the packaged MiniLM or a local model directory.
        audio_frontend_id: the frozen musicnn model giving patch vectors and tags
            ("MSD_musicnn" or "MTT_musicnn").
        patch_hop_frames: hop between audio patches in log-mel frames; None means no
            overlap (a patch is 187 frames, about 3 s).
        concept_tokens: detected concepts fed beside the audio patches, as the paper
            feeds AudioSet concepts (0 = off): the clip's ``concept_tokens`` most probable
            musicnn tags (of ``n_concepts`` = 50 MSD + 50 MTT), each a token made of the
            text tower's reading of the tag's name plus its probability. Concept names
            in text then land where the audio has them.
        n_concepts: size of the concept vocabulary (100: MSD then MTT tags).
    """

    model_type = "musicbert"

    def __init__(
        self,
        hidden_size: int = 256,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 4,
        intermediate_size: int = 1024,
        hidden_dropout_prob: float = 0.1,
        attention_dropout_prob: float = 0.1,
        layer_norm_eps: float = 1e-6,
        initializer_range: float = 0.02,
        audio_input_dim: int = 200,
        text_input_dim: int = 384,
        projection_dim: int = 256,
        max_audio_patches: int = 64,
        max_text_tokens: int = 256,
        n_tags: int = 50,
        mask_probability: float = 0.15,
        logit_scale_init: float = 2.6592,
        mlm_weight: float = 1.0,
        contrastive_weight: float = 1.0,
        cpc_weight: float = 1.0,
        tag_weight: float = 1.0,
        untrained: bool = True,
        init_seed: int = 0,
        text_tower_id: str = MINILM_ID,
        text_tower_sha256: str | None = MINILM_SHA256,
        audio_frontend_id: str = "MSD_musicnn",
        patch_hop_frames: int | None = None,
        concept_tokens: int = 0,
        n_concepts: int = 100,
        **kwargs,
    ) -> None:
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size {hidden_size} is not a multiple of "
                f"num_attention_heads {num_attention_heads}"
            )
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_dropout_prob = attention_dropout_prob
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.audio_input_dim = audio_input_dim
        self.text_input_dim = text_input_dim
        self.projection_dim = projection_dim
        self.max_audio_patches = max_audio_patches
        self.max_text_tokens = max_text_tokens
        self.n_tags = n_tags
        self.mask_probability = mask_probability
        self.logit_scale_init = logit_scale_init
        self.mlm_weight = mlm_weight
        self.contrastive_weight = contrastive_weight
        self.cpc_weight = cpc_weight
        self.tag_weight = tag_weight
        self.untrained = untrained
        self.init_seed = init_seed
        self.text_tower_id = text_tower_id
        self.text_tower_sha256 = text_tower_sha256
        self.audio_frontend_id = audio_frontend_id
        self.patch_hop_frames = patch_hop_frames
        self.concept_tokens = concept_tokens
        self.n_concepts = n_concepts
        super().__init__(**kwargs)
