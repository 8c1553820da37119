"""The log-mel spectrogram musicnn was trained on, computed in torch.

musicnn's weights only make sense for the exact input they were trained with:
16 kHz mono, a 512-point STFT with hop 256 (librosa's defaults: periodic Hann
window, centred frames, zero padding at the edges), power spectrum, 96 Slaney
mel bands, then ``log10(10000 x + 1)``. Doing it in torch lets a batch of
clips go through one ``stft`` call on the CPU or a GPU, without librosa at
run time. The filterbank is rebuilt here with librosa's float32/float64
arithmetic so that the two agree bit-for-bit on the weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from musicbert.errors import AudioError, ConfigError

SR = 16_000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # about 3 s: the input length musicnn was trained on
N_BINS = N_FFT // 2 + 1

_F_SP = 200.0 / 3  # Slaney mel scale: linear below 1 kHz ...
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0  # ... logarithmic above


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    above = hz >= _MIN_LOG_HZ
    mel[above] = _MIN_LOG_MEL + np.log(hz[above] / _MIN_LOG_HZ) / _LOGSTEP
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = _F_SP * mel
    above = mel >= _MIN_LOG_MEL
    hz[above] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel[above] - _MIN_LOG_MEL))
    return hz


def mel_filterbank(sr: int = SR, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-normalised triangular filters, shape (n_mels, n_fft // 2 + 1), float32.

    Same construction and rounding as ``librosa.filters.mel(sr=sr, n_fft=n_fft,
    n_mels=n_mels)`` (fmin 0, fmax sr/2, htk False, norm 'slaney').
    """
    fftfreqs = np.fft.rfftfreq(n_fft, d=1.0 / sr)
    edges = _hz_to_mel(np.array([0.0, sr / 2.0]))
    mel_f = _mel_to_hz(np.linspace(edges[0], edges[1], n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    return weights


class LogMel(nn.Module):
    """Waveforms (B, N) float32 at 16 kHz -> log-mel frames (B, T, 96), T = 1 + N // 256."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        self.register_buffer("mel_basis", torch.from_numpy(mel_filterbank()), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.ndim == 1:
            wave = wave.unsqueeze(0)
        if wave.ndim != 2:
            raise AudioError(
                f"LogMel expects waveforms shaped (batch, samples), got {tuple(wave.shape)}"
            )
        if wave.shape[-1] == 0:
            raise AudioError("LogMel: empty waveform (0 samples)")
        wave = wave.to(torch.float32)
        spec = torch.stft(
            wave,
            n_fft=N_FFT,
            hop_length=HOP,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # (B, F, T)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self.mel_basis, power)  # (B, 96, T)
        return torch.log10(10000.0 * mel + 1.0).transpose(1, 2).contiguous()


_DEFAULT: LogMel | None = None


def _default_module() -> LogMel:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = LogMel()
    return _DEFAULT


def _check_wave(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise AudioError(f"logmel expects mono samples shaped (n,), got {wave.shape}")
    if wave.size == 0:
        raise AudioError("logmel: empty waveform (0 samples)")
    if not np.isfinite(wave).all():
        raise AudioError("logmel: waveform contains NaN or infinite samples")
    return wave


def logmel(wave: np.ndarray) -> np.ndarray:
    """Mono float32 samples at 16 kHz -> (T, 96) float32 log-mel frames.

    The whole signal goes through one STFT; for long files use ``logmel_stream``.
    """
    wave = _check_wave(wave)
    with torch.inference_mode():
        out = _default_module()(torch.from_numpy(wave).unsqueeze(0))
    return out[0].numpy()


def logmel_stream(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Log-mel of a signal given in consecutive blocks, frame-identical to ``logmel``.

    Each yielded array is (t, 96) with t >= 0; concatenated they equal
    ``logmel(np.concatenate(blocks))``. Only one block plus one window of
    samples is held at a time, so an hour-long file needs little memory.
    """
    half = N_FFT // 2
    carry = np.zeros(half, dtype=np.float32)  # the centred first frame's zero padding
    total = 0
    for block in blocks:
        block = _check_wave(block) if np.asarray(block).size else np.zeros(0, np.float32)
        total += block.size
        buf = np.concatenate([carry, block])
        n_frames = (buf.size - N_FFT) // HOP + 1 if buf.size >= N_FFT else 0
        if n_frames > 0:
            yield _frames(buf[: (n_frames - 1) * HOP + N_FFT])
            carry = buf[n_frames * HOP :]
        else:
            carry = buf
    if total == 0:
        raise AudioError("logmel: empty waveform (0 samples)")
    buf = np.concatenate([carry, np.zeros(half, dtype=np.float32)])
    n_frames = (buf.size - N_FFT) // HOP + 1 if buf.size >= N_FFT else 0
    if n_frames > 0:
        yield _frames(buf[: (n_frames - 1) * HOP + N_FFT])


def _frames(padded: np.ndarray) -> np.ndarray:
    """Frames of an already padded signal: frame t covers padded[t*HOP : t*HOP + N_FFT]."""
    module = _default_module()
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(padded))
        spec = torch.stft(
            x,
            n_fft=N_FFT,
            hop_length=HOP,
            window=module.window,
            center=False,
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(module.mel_basis, power)
        return torch.log10(10000.0 * mel + 1.0).T.contiguous().numpy()


def patchify(
    frames: torch.Tensor | np.ndarray,
    patch_frames: int = PATCH_FRAMES,
    hop_frames: int | None = None,
    *,
    cover_tail: bool = False,
) -> torch.Tensor | np.ndarray:
    """(T, 96) log-mel -> (P, patch_frames, 96) patches, same array type as the input.

    Patches start every ``hop_frames`` (default: ``patch_frames``, no overlap, as
    musicnn's reference tagging). A clip shorter than one patch is zero-padded
    at the end (log-mel 0 is silence), so there is always at least one patch.
    With ``cover_tail`` a last patch ending at the final frame is added when the
    regular grid would leave frames uncovered.
    """
    hop = patch_frames if hop_frames is None else int(hop_frames)
    if patch_frames <= 0 or hop <= 0:
        raise ConfigError(f"patch and hop lengths must be positive, got {patch_frames}, {hop}")
    is_tensor = isinstance(frames, torch.Tensor)
    if frames.ndim != 2:
        raise AudioError(
            f"patchify expects log-mel frames shaped (T, mels), got {tuple(frames.shape)}"
        )
    n = frames.shape[0]
    if n == 0:
        raise AudioError("patchify: no log-mel frames")
    if n < patch_frames:
        if is_tensor:
            pad = frames.new_zeros((patch_frames - n, frames.shape[1]))
            return torch.cat([frames, pad]).unsqueeze(0)
        pad = np.zeros((patch_frames - n, frames.shape[1]), dtype=frames.dtype)
        return np.concatenate([frames, pad])[np.newaxis]
    starts = list(range(0, n - patch_frames + 1, hop))
    if cover_tail and starts[-1] + patch_frames < n:
        starts.append(n - patch_frames)
    if is_tensor:
        return torch.stack([frames[s : s + patch_frames] for s in starts])
    return np.stack([frames[s : s + patch_frames] for s in starts])
