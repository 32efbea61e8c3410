"""The model-backend interface: `infer(model, inputs) -> outputs`, named tensors in and out, so a stage does not
care whether the model runs in its own process or on a Triton server.

`infer_each` sends several inputs of one model that cannot share a batch (audio clips of different
lengths): in-process it runs them in turn, on Triton they are in flight together.

Models and their tensors (deploy/triton/models holds the same contracts as config.pbtxt). The three
emotion models take raw inputs, prepare them as their own format says (models/info.py: mini-XCEPTION,
ONNX with a card, transformers folders, ...) and answer in the canonical order (core/emotions.py):
    face_detector    images uint8 [N, H, W, 3] RGB -> boxes float32 [N, K, 4], scores float32 [N, K],
                     landmarks float32 [N, K, 5, 2] (eyes, nose, mouth corners as x, y)
    facial_emotion   faces uint8 [N, S, S, 3] RGB crops -> probabilities float32 [N, 7]
    speech_emotion   audio float32 [N, samples] in [-1, 1], sample_rate int32 [N, 1] -> probabilities
                     float32 [N, 7] (N = 1 in practice: clips differ in length)
    text_emotion     texts bytes [N] (UTF-8) -> probabilities float32 [N, 7]
    whisper          audio float32 [N, samples] at 16 kHz, language bytes [N, 1] -> text bytes [N, 1],
                     words bytes [N, K], word_times float32 [N, K, 2], word_probs float32 [N, K]
                     (rows padded with empty words)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

Tensors = Mapping[str, np.ndarray]
Model = Callable[[Tensors], dict[str, np.ndarray]]


class ModelBackend(Protocol):
    def infer(self, model: str, inputs: Tensors) -> dict[str, np.ndarray]: ...

    def infer_each(self, model: str, each: Sequence[Tensors]) -> list[dict[str, np.ndarray]]: ...
