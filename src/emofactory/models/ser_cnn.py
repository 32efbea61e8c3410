"""A speech-emotion CNN trained on RAVDESS + TESS (marcogdepinto/Emotion-Classification-Ravdess,
Keras 2 HDF5, GPL-3.0: used from a configured path, never bundled), re-implemented in PyTorch.

Input: the mean over time of 40 librosa MFCCs of the clip at 22,050 Hz, shape [N, 40].
Output: softmax over CLASSES."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import soxr
import torch
from torch import nn
from torch.nn import functional as F

from emofactory.core.mfcc import librosa_mfcc

CLASSES = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
SAMPLE_RATE = 22050
N_MFCC = 40


def ser_features(samples: np.ndarray, rate: int) -> np.ndarray:
    """[40] mean MFCCs of float samples in [-1, 1], resampled to 22,050 Hz as librosa.load does."""
    x = np.asarray(samples, dtype=np.float32)
    if rate != SAMPLE_RATE:
        x = soxr.resample(x, rate, SAMPLE_RATE, "HQ")  # librosa.load's default resampler
    return librosa_mfcc(x, SAMPLE_RATE, N_MFCC).mean(axis=1)


class SerCnn(nn.Module):
    """Conv1D(128, 5, same) - ReLU - MaxPool(8) - Conv1D(128, 5, same) - ReLU - Flatten - Dense(8)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 128, 5, padding=2)
        self.conv2 = nn.Conv1d(128, 128, 5, padding=2)
        self.dense = nn.Linear(640, len(CLASSES))

    def forward(self, features):
        """Logits [N, 8] from mean MFCCs [N, 40]."""
        x = F.relu(self.conv1(features[:, None, :]))
        x = F.relu(self.conv2(F.max_pool1d(x, 8)))
        return self.dense(x.transpose(1, 2).flatten(1))  # Keras flattens (time, channel)


def load_ser_cnn(path: Path | str) -> SerCnn:
    model = SerCnn()
    with h5py.File(path, "r") as f:
        w = f["model_weights"]

        def weight(layer: str, name: str) -> torch.Tensor:
            return torch.from_numpy(np.asarray(w[f"{layer}/{layer}/{name}:0"]))

        model.conv1.weight.data = weight("conv1d_1", "kernel").permute(2, 1, 0).contiguous()
        model.conv1.bias.data = weight("conv1d_1", "bias")
        model.conv2.weight.data = weight("conv1d_2", "kernel").permute(2, 1, 0).contiguous()
        model.conv2.bias.data = weight("conv1d_2", "bias")
        model.dense.weight.data = weight("dense_1", "kernel").T.contiguous()
        model.dense.bias.data = weight("dense_1", "bias")
    return model.eval()
