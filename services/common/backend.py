"""Model backends: `infer(model, inputs) -> outputs`, named tensors in and out, so a stage does not
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

import threading
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Protocol

import numpy as np

from services.common.config import ModelsConfig
from services.common.errors import PermanentError

Tensors = Mapping[str, np.ndarray]
Model = Callable[[Tensors], dict[str, np.ndarray]]


class ModelBackend(Protocol):
    def infer(self, model: str, inputs: Tensors) -> dict[str, np.ndarray]: ...

    def infer_each(self, model: str, each: Sequence[Tensors]) -> list[dict[str, np.ndarray]]: ...


class InProcessBackend:
    """Loads each model on first use (once, under a lock) and runs it in this process."""

    def __init__(self, config: ModelsConfig, loaders: Mapping[str, Callable[[ModelsConfig], Model]]):
        self.config = config
        self.loaders = loaders
        self.models: dict[str, Model] = {}
        self.lock = threading.Lock()

    def model(self, name: str) -> Model:
        if name not in self.models:
            if name not in self.loaders:
                raise PermanentError(f"unknown model {name!r} (known: {', '.join(sorted(self.loaders))})")
            with self.lock:
                if name not in self.models:
                    self.models[name] = self.loaders[name](self.config)
        return self.models[name]

    def infer(self, model: str, inputs: Tensors) -> dict[str, np.ndarray]:
        return self.model(model)(inputs)

    def infer_each(self, model: str, each: Sequence[Tensors]) -> list[dict[str, np.ndarray]]:
        return [self.infer(model, inputs) for inputs in each]


class RoutedBackend:
    """Each model on the backend named for it, the rest on the default one."""

    def __init__(self, default: ModelBackend, routes: Mapping[str, ModelBackend]):
        self.default = default
        self.routes = dict(routes)

    def infer(self, model: str, inputs: Tensors) -> dict[str, np.ndarray]:
        return self.routes.get(model, self.default).infer(model, inputs)

    def infer_each(self, model: str, each: Sequence[Tensors]) -> list[dict[str, np.ndarray]]:
        return self.routes.get(model, self.default).infer_each(model, each)


BACKENDS = ("inprocess", "triton")


def model_routes(config: ModelsConfig) -> dict[str, str]:
    """models.model_backends as {model: backend}, checked."""
    routes = {}
    for item in config.model_backends:
        model, sep, backend = item.partition("=")
        if not sep or backend.strip() not in BACKENDS:
            raise PermanentError(f"models.model_backends items are model=inprocess|triton, not {item!r}")
        routes[model.strip()] = backend.strip()
    return routes


def _make_backend(name: str, config: ModelsConfig) -> ModelBackend:
    if name == "inprocess":
        from services.models.registry import LOADERS

        return InProcessBackend(config, LOADERS)
    if name == "triton":
        from services.common.triton_backend import TritonBackend

        return TritonBackend(config)
    raise PermanentError(f"models.backend must be one of {', '.join(BACKENDS)}, not {name!r}")


@cache
def backend_for(config: ModelsConfig) -> ModelBackend:
    """One backend per process and config, shared by the servicer and the worker."""
    routes = model_routes(config)
    backends = {name: _make_backend(name, config) for name in {config.backend, *routes.values()}}
    if not routes:
        return backends[config.backend]
    return RoutedBackend(backends[config.backend], {model: backends[name] for model, name in routes.items()})
