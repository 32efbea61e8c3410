"""Speaker-change points inside speech segments (seed 000 §3.3.1): MFCCs over overlapping windows,
cosine similarity between consecutive windows, a change where it falls below a threshold.

Two choices make the cosine meaningful on real voices: the MFCCs are mean-normalised over the
file's speech (without it every window of every voice looks alike, similarity > 0.9), and
low-energy frames (pauses inside a window) are left out of the window means."""

from __future__ import annotations

import numpy as np

from emofactory.core.mfcc import mfcc
from emofactory.stages.vad.config import VadConfig

HOP_S = 0.010
# Frames more than this many dB (in log-energy units of c0) under the loud ones count as pauses.
GATE = 15.0
MIN_FRAMES = 20


def speaker_features(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(normalised MFCCs without c0, voiced mask) on a 10 ms grid."""
    coeffs = mfcc(samples, sample_rate, hop_s=HOP_S)
    if len(coeffs) == 0:
        return coeffs[:, 1:], np.zeros(0, bool)
    voiced = coeffs[:, 0] > np.percentile(coeffs[:, 0], 95) - GATE
    features = coeffs[:, 1:] - coeffs[voiced, 1:].mean(axis=0)
    return features, voiced


def similarity_curve(
    features: np.ndarray, voiced: np.ndarray, start_s: float, end_s: float, config: VadConfig
) -> list[tuple[float, float]]:
    """(time, cosine similarity of the windows just before and just after it) along a segment."""
    width = int(round(config.speaker_window_s / HOP_S))
    first, last = int(round(start_s / HOP_S)), int(round(end_s / HOP_S))
    step = max(1, int(round(config.speaker_hop_s / HOP_S)))
    curve = []
    for i in range(first + width, min(last, len(features)) - width + 1, step):
        left = features[i - width : i][voiced[i - width : i]]
        right = features[i : i + width][voiced[i : i + width]]
        if len(left) < MIN_FRAMES or len(right) < MIN_FRAMES:
            continue
        a, b = left.mean(axis=0), right.mean(axis=0)
        curve.append((i * HOP_S, float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))))
    return curve


def change_points(curve: list[tuple[float, float]], start_s: float, end_s: float, config: VadConfig) -> list[float]:
    """Local minima under the threshold, deepest first, each leaving min_segment_s on both sides."""
    candidates = [
        curve[i]
        for i in range(len(curve))
        if curve[i][1] < config.speaker_threshold
        and (i == 0 or curve[i][1] <= curve[i - 1][1])
        and (i == len(curve) - 1 or curve[i][1] <= curve[i + 1][1])
    ]
    chosen: list[float] = []
    for t, _ in sorted(candidates, key=lambda c: c[1]):
        bounds = sorted([start_s, end_s, *chosen])
        if all(abs(t - b) >= config.min_segment_s for b in bounds):
            chosen.append(t)
    return sorted(chosen)
