"""The model-backend interface: `infer(model, inputs) -> outputs`, named tensors in and out, so a stage does not
care whether the model runs in its own process or on a Triton server.

`infer_each` sends several inputs of one model that cannot share a batch (audio clips of different
lengths): in-process it runs them in turn, on Triton they are in flight together.

Models and their tensors (deploy/triton/models holds the same contracts as config.pbtxt):
    face_detector    images uint8 [N, H, W, 3] RGB -> boxes float32 [N, K, 4], scores float32 [N, K]
    facial_emotion   faces float32 [N, 1, 64, 64] in [-1, 1] -> probabilities float32 [N, 7] (FER2013 order)
    speech_emotion   audio float32 [1, samples] at 16 kHz in [-1, 1] -> logits float32 [1, 8] (RAVDESS order)
    text_emotion     texts bytes [N] (UTF-8) -> logits float32 [N, 7] (canonical order, log-probabilities)
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
