"""Where models run: in this process (the loaders of `registry`), on Triton, or routed per model.
`backend_for(models config)` gives a stage its backend."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from functools import cache

import numpy as np

from emofactory.core.backend import Model, ModelBackend, Tensors
from emofactory.core.config import ModelsConfig
from emofactory.core.errors import PermanentError


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


def in_process(backend: ModelBackend, model: str) -> InProcessBackend | None:
    """The in-process backend that runs `model`, or None where it runs elsewhere (Triton, a test's)."""
    if isinstance(backend, RoutedBackend):
        backend = backend.routes.get(model, backend.default)
    return backend if isinstance(backend, InProcessBackend) else None


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
        from emofactory.models.registry import LOADERS  # torch only where models run in this process

        return InProcessBackend(config, LOADERS)
    if name == "triton":
        from emofactory.models.triton_backend import TritonBackend  # tritonclient only where it is used

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
