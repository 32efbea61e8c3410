"""MFCCs in NumPy: pre-emphasis, 25 ms Hamming frames every 10 ms, mel filterbank, log, DCT-II."""

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
def _dct(n_mels: int, n_mfcc: int) -> np.ndarray:
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
    return mel @ _dct(n_mels, n_mfcc).T
