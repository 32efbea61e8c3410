"""MFCCs in NumPy, two flavours:
- `mfcc`: speech-processing style (pre-emphasis, 25 ms Hamming frames every 10 ms, HTK mel, log,
  DCT-II), for speaker-change detection;
- `librosa_mfcc`: exactly what `librosa.feature.mfcc` computes with its defaults (Slaney mel
  filters, power to dB with an 80 dB floor), which models trained on librosa features expect."""

from __future__ import annotations

from functools import cache

import numpy as np


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


@cache
def _filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    edges = _mel_to_hz(np.linspace(_hz_to_mel(20.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (center - lower)
    falling = (upper - bins) / (upper - center)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


@cache
def dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    n = np.arange(n_mels)
    k = np.arange(n_mfcc)[:, None]
    basis = np.cos(np.pi / n_mels * (n + 0.5) * k) * np.sqrt(2.0 / n_mels)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


def mfcc(
    samples: np.ndarray,
    sample_rate: int,
    n_mfcc: int = 20,
    n_mels: int = 40,
    win_s: float = 0.025,
    hop_s: float = 0.010,
) -> np.ndarray:
    """(frames, n_mfcc) coefficients of float samples in [-1, 1]; frame i starts at i * hop_s."""
    win, hop = int(round(win_s * sample_rate)), int(round(hop_s * sample_rate))
    x = np.asarray(samples, dtype=np.float32)
    if len(x) < win:
        return np.zeros((0, n_mfcc), np.float32)
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])
    count = 1 + (len(x) - win) // hop
    frames = np.lib.stride_tricks.as_strided(x, (count, win), (x.strides[0] * hop, x.strides[0]))
    n_fft = 1 << (win - 1).bit_length()
    power = np.abs(np.fft.rfft(frames * np.hamming(win).astype(np.float32), n_fft)) ** 2 / n_fft
    mel = np.log(power @ _filterbank(sample_rate, n_fft, n_mels).T + 1e-10)
    return mel @ dct_matrix(n_mels, n_mfcc).T


def _slaney_hz_to_mel(hz):
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_step = np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / log_step, linear)


def _slaney_mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(log_step * (mel - 15.0)), mel * (200.0 / 3))


@cache
def slaney_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels) with its defaults (fmin 0, fmax sr/2, Slaney norm)."""
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(0.0), _slaney_hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


def librosa_mfcc(
    samples: np.ndarray, sample_rate: int, n_mfcc: int = 20, n_fft: int = 2048, hop: int = 512, n_mels: int = 128
) -> np.ndarray:
    """(n_mfcc, frames), as librosa.feature.mfcc(y, sr, n_mfcc): centred frames (zero padding),
    periodic Hann window, power mel spectrogram, 10*log10 with an 80 dB floor, orthonormal DCT-II."""
    x = np.pad(np.asarray(samples, dtype=np.float32), n_fft // 2)
    count = 1 + (len(x) - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(x, (count, n_fft), (x.strides[0] * hop, x.strides[0]))
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, n_fft)) ** 2
    db = 10.0 * np.log10(np.maximum(1e-10, power @ slaney_filterbank(sample_rate, n_fft, n_mels).T))
    db = np.maximum(db, db.max() - 80.0)
    return (db @ dct_matrix(n_mels, n_mfcc).T).T
