# This module is a PyTorch port of the musicnn audio tagging models
# (MSD_musicnn, MTT_musicnn) by Jordi Pons and Xavier Serra, written from the
# description in musicnn 0.1.0 (https://github.com/jordipons/musicnn); the
# weights are read from that package's checkpoint files. musicnn's notice:
#
#   Copyright (c) 2019, Jordi Pons and Xavier Serra
#   Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019.
#   Code developed by Jordi Pons (www.jordipons.me).
#
#   Permission to use, copy, modify, and/or distribute this software for any
#   purpose with or without fee is hereby granted, provided that the above
#   copyright notice and this permission notice appear in all copies.
#
#   THE SOFTWARE IS PROVIDED "AS IS" AND THE AUTHOR DISCLAIMS ALL WARRANTIES
#   WITH REGARD TO THIS SOFTWARE INCLUDING ALL IMPLIED WARRANTIES OF
#   MERCHANTABILITY AND FITNESS. IN NO EVENT SHALL THE AUTHOR BE LIABLE FOR ANY
#   SPECIAL, DIRECT, INDIRECT, OR CONSEQUENTIAL DAMAGES OR ANY DAMAGES
#   WHATSOEVER RESULTING FROM LOSS OF USE, DATA OR PROFITS, WHETHER IN AN ACTION
#   OF CONTRACT, NEGLIGENCE OR OTHER TORTIOUS ACTION, ARISING OUT OF OR IN
#   CONNECTION WITH THE USE OR PERFORMANCE OF THIS SOFTWARE.
"""musicnn in PyTorch: the low-level music encoder and a 50-tag tagger.

The network reads a 3 s log-mel patch (187 frames x 96 bands):

* front-end: the input is batch-normalised, then musically motivated
  filters run over it: two "timbral" filter banks spanning 7 frames and 38 or
  67 mel bands (204 filters each) and three "temporal" banks spanning 128, 64
  or 32 frames in one band (51 filters each); each is ReLU, batch norm, and a
  max over frequency, giving 561 channels per frame;
* mid-end: three 1-D convolutions over time (64 filters, width 7), the last
  two with residual connections; the front-end and the three outputs are
  stacked to 753 channels per frame;
* back-end: max and mean over time (753 each), batch norm, a 200-unit dense
  layer (ReLU, batch norm; this is the "penultimate" embedding) and 50 logits.

TensorFlow conventions carried over: batch-norm epsilon 1e-3 with the stored
moving averages, "same" padding that puts the odd sample after the signal,
and the back-end's flatten of (753, 2) that interleaves max and mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musicbert.errors import AudioError, CheckpointError
from musicbert.logmel import N_MELS, PATCH_FRAMES

PENULTIMATE_DIM = 200
POOL_DIM = 753
N_TAGS = 50
BN_EPS = 1e-3  # TensorFlow's batch_normalization default
MODEL_NAMES = ("MSD_musicnn", "MTT_musicnn")

# Output order of each model's 50 sigmoid units (musicnn 0.1.0 configuration).
TAGS: dict[str, list[str]] = {
    "MSD_musicnn": [
        "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance",
        "00s", "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
        "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s",
        "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
        "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
        "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal",
        "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
    ],
    "MTT_musicnn": [
        "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock",
        "fast", "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian",
        "opera", "male", "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet",
        "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
        "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats",
        "harp", "cello", "no voice", "weird", "country", "metal", "female voice", "choral",
    ],
}  # fmt: skip


@dataclass
class MusicnnOutput:
    """Per-patch outputs; every field has the batch (patch) dimension first."""

    logits: torch.Tensor  # (B, 50)
    tag_probs: torch.Tensor  # (B, 50)
    penultimate: torch.Tensor  # (B, 200)
    mean_pool: torch.Tensor  # (B, 753)
    max_pool: torch.Tensor  # (B, 753)


def _bn(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=BN_EPS)


class _SpectralBlock(nn.Module):
    """conv over (time, freq) -> ReLU -> batch norm -> max over frequency."""

    def __init__(self, filters: int, time_width: int, freq_width: int, time_pad: tuple[int, int]):
        super().__init__()
        self.time_pad = time_pad
        self.conv = nn.Conv2d(1, filters, (time_width, freq_width))
        self.bn = nn.BatchNorm2d(filters, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, T, F)
        z = self.conv(F.pad(x, (0, 0, *self.time_pad)))  # (B, filters, T, F')
        if self.training:
            return self.bn(F.relu(z)).amax(dim=3)
        # In inference batch norm is a per-channel affine map, and ReLU and that map are
        # monotone, so the maximum over frequency can be taken first: of z where the
        # channel's scale is positive, of -z's maximum (z's minimum) where negative. The
        # result is identical and ReLU/BN touch a tensor ~60-100x smaller.
        low, high = torch.aminmax(z, dim=3)
        negative = (self.bn.weight < 0).view(1, -1, 1)
        pooled = torch.where(negative, low, high)
        return F.batch_norm(
            F.relu(pooled),
            self.bn.running_mean,
            self.bn.running_var,
            self.bn.weight,
            self.bn.bias,
            training=False,
            eps=self.bn.eps,
        )  # (B, filters, T)


def _same_pad(width: int) -> tuple[int, int]:
    """TensorFlow 'same' padding for stride 1: the extra sample goes after."""
    total = width - 1
    return total // 2, total - total // 2


class Musicnn(nn.Module):
    """One musicnn tagger (architecture shared by MSD_musicnn and MTT_musicnn)."""

    def __init__(self, name: str = "MSD_musicnn", n_mels: int = N_MELS) -> None:
        super().__init__()
        self.name = name
        self.tags = list(TAGS.get(name, [f"tag{i}" for i in range(N_TAGS)]))
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        timbral = int(1.6 * 128)
        temporal = int(1.6 * 32)
        self.frontend = nn.ModuleList(
            [
                _SpectralBlock(timbral, 7, int(0.4 * n_mels), (3, 3)),
                _SpectralBlock(timbral, 7, int(0.7 * n_mels), (3, 3)),
                _SpectralBlock(temporal, 128, 1, _same_pad(128)),
                _SpectralBlock(temporal, 64, 1, _same_pad(64)),
                _SpectralBlock(temporal, 32, 1, _same_pad(32)),
            ]
        )
        # Channels-last weights put the one-channel spectral convolutions on oneDNN's faster
        # path: 16% less CPU per patch, the same outputs up to float rounding (~3e-6).
        for block in self.frontend:
            block.conv.to(memory_format=torch.channels_last)
        front = 2 * timbral + 3 * temporal  # 561
        mid = 64
        self.mid_convs = nn.ModuleList(
            [nn.Conv1d(width, mid, 7, padding=3) for width in (front, mid, mid)]
        )
        self.mid_bns = nn.ModuleList([_bn(mid) for _ in range(3)])
        pooled = front + 3 * mid  # 753
        self.pool_bn = _bn(2 * pooled)
        self.dense = nn.Linear(2 * pooled, PENULTIMATE_DIM)
        self.dense_bn = _bn(PENULTIMATE_DIM)
        self.output = nn.Linear(PENULTIMATE_DIM, N_TAGS)
        self.eval()

    def forward(self, patches: torch.Tensor) -> MusicnnOutput:
        """patches (B, 187, 96) log-mel -> per-patch tags, embedding and pooled features."""
        if patches.ndim != 3 or patches.shape[2] != N_MELS:
            raise AudioError(
                f"musicnn expects log-mel patches shaped (B, {PATCH_FRAMES}, {N_MELS}), "
                f"got {tuple(patches.shape)}"
            )
        x = self.input_bn(patches.unsqueeze(1))  # (B, 1, T, F)
        front = torch.cat([block(x) for block in self.frontend], dim=1)  # (B, 561, T)
        layers = [front]
        h = self.mid_bns[0](F.relu(self.mid_convs[0](front)))
        layers.append(h)
        for conv, bn in zip(self.mid_convs[1:], self.mid_bns[1:], strict=True):
            h = bn(F.relu(conv(h))) + h
            layers.append(h)
        features = torch.cat(layers, dim=1)  # (B, 753, T)
        max_pool = features.amax(dim=2)
        mean_pool = features.mean(dim=2)
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # interleaved, as TF
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        logits = self.output(penultimate)
        return MusicnnOutput(
            logits=logits,
            tag_probs=torch.sigmoid(logits),
            penultimate=penultimate,
            mean_pool=mean_pool,
            max_pool=max_pool,
        )


# TF layer names in creation order (tf.compat.v1.layers numbering) -> our modules.
def _tf_names(model: Musicnn) -> list[tuple[str, nn.Module]]:
    pairs: list[tuple[str, nn.Module]] = [("batch_normalization", model.input_bn)]
    for i, block in enumerate(model.frontend):
        pairs += [
            (_numbered("conv2d", i), block.conv),
            (_numbered("batch_normalization", i + 1), block.bn),
        ]
    for i, (conv, bn) in enumerate(zip(model.mid_convs, model.mid_bns, strict=True)):
        pairs += [(_numbered("conv2d", 5 + i), conv), (_numbered("batch_normalization", 6 + i), bn)]
    pairs += [
        ("batch_normalization_9", model.pool_bn),
        ("dense", model.dense),
        ("batch_normalization_10", model.dense_bn),
        ("dense_1", model.output),
    ]
    return pairs


def _numbered(base: str, i: int) -> str:
    return base if i == 0 else f"{base}_{i}"


def state_dict_from_tf(model: Musicnn, tf_vars: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map TF variables (NHWC kernels, (in, out) dense) onto ``model``'s parameter layout."""
    names = {id(m): prefix for prefix, m in model.named_modules()}
    state: dict[str, torch.Tensor] = {}

    def take(key: str) -> np.ndarray:
        if key not in tf_vars:
            raise CheckpointError(f"{model.name}: checkpoint lacks variable {key!r}")
        return tf_vars[key]

    for tf_name, module in _tf_names(model):
        prefix = names[id(module)]
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            parts = {
                "weight": "gamma",
                "bias": "beta",
                "running_mean": "moving_mean",
                "running_var": "moving_variance",
            }
            for ours, theirs in parts.items():
                state[f"{prefix}.{ours}"] = torch.from_numpy(take(f"{tf_name}/{theirs}").copy())
        else:
            kernel = take(f"{tf_name}/kernel")
            if isinstance(module, nn.Conv2d):  # (kh, kw, in, out) -> (out, in, kh, kw)
                weight = kernel.transpose(3, 2, 0, 1)
            elif isinstance(module, nn.Conv1d):  # (k, in_channels, 1, out) -> (out, in, k)
                weight = kernel[:, :, 0, :].transpose(2, 1, 0)
            else:  # dense (in, out) -> (out, in)
                weight = kernel.T
            state[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
            state[f"{prefix}.bias"] = torch.from_numpy(take(f"{tf_name}/bias").copy())
    expected = model.state_dict()
    for key, value in state.items():
        if key in expected and expected[key].shape != value.shape:
            raise CheckpointError(
                f"{model.name}: variable for {key} has shape {tuple(value.shape)}, "
                f"expected {tuple(expected[key].shape)}"
            )
    return state


def load_musicnn(name: str = "MSD_musicnn", device: str | torch.device = "cpu") -> Musicnn:
    """A pretrained musicnn (eval mode) with weights from the pinned, cached checkpoint."""
    from musicbert.weights import load_tf_variables

    if name not in MODEL_NAMES:
        raise CheckpointError(
            f"unknown musicnn model {name!r}; choose one of {', '.join(MODEL_NAMES)}"
        )
    model = Musicnn(name)
    state = state_dict_from_tf(model, load_tf_variables(name))
    missing = [k for k in model.state_dict() if k not in state and "num_batches_tracked" not in k]
    if missing:
        raise CheckpointError(f"{name}: no weights for {', '.join(missing[:3])}")
    model.load_state_dict(state, strict=False)
    return model.to(device).eval()
