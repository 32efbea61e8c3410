"""The model backend on NVIDIA Triton (gRPC): the same named tensors as in-process, sent to the
model repository in deploy/triton/models.

A worker's batch is split into requests of at most the model's max_batch_size, sent concurrently,
so the server's dynamic batcher can merge them with other workers' requests. Clips of different
lengths go one per request (`infer_each`), never padded to the longest. An unreachable or
overloaded server is retried with backoff, then raised as a TransientError (the message is
redelivered later); a request the model rejects is a PermanentError naming the model."""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from emofactory.core.backend import Tensors
from emofactory.core.config import ModelsConfig
from emofactory.core.errors import PermanentError, TransientError

# gRPC codes that say "the server, not the request": worth another try.
RETRIABLE = {"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.RESOURCE_EXHAUSTED"}


class TritonBackend:
    def __init__(self, config: ModelsConfig):
        import tritonclient.grpc as grpcclient

        self.grpc = grpcclient
        self.config = config
        self.client = grpcclient.InferenceServerClient(url=config.triton_url)
        self.pool = ThreadPoolExecutor(max_workers=max(1, config.triton_concurrency), thread_name_prefix="triton")
        self.model_configs: dict[str, dict] = {}
        self.lock = threading.Lock()
        # Closed before the interpreter tears grpc down (tritonclient's __del__ would fail then).
        atexit.register(self.close)

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        self.client.close()
        # Its __del__ closes again: let that happen now, while grpc is still whole.
        del self.client

    # -- calls with retries -------------------------------------------------------------------
    def _call(self, what: str, fn, *args, **kwargs):
        from tritonclient.utils import InferenceServerException

        attempts = max(1, self.config.triton_retries + 1)
        for attempt in range(attempts):
            try:
                return fn(*args, **kwargs)
            except InferenceServerException as exc:
                status, message = str(exc.status()), exc.message() or str(exc)
                if status not in RETRIABLE:
                    raise PermanentError(f"triton {what} failed ({status}): {message}") from exc
                if attempt + 1 == attempts:
                    raise TransientError(
                        f"triton at {self.config.triton_url} unavailable for {what} after {attempts} attempts "
                        f"({status}): {message}"
                    ) from exc
                time.sleep(self.config.triton_backoff_s * 2**attempt)

    def model_config(self, model: str) -> dict:
        """The served model's config (max_batch_size, input dims), fetched once it answers."""
        if model not in self.model_configs:
            reply = self._call(
                f"model {model!r} config",
                self.client.get_model_config,
                model,
                as_json=True,
                client_timeout=self.config.triton_timeout_s,
            )
            with self.lock:
                self.model_configs[model] = reply["config"]
        return self.model_configs[model]

    # -- inference ----------------------------------------------------------------------------
    def _request(self, model: str, inputs: Tensors) -> dict[str, np.ndarray]:
        from tritonclient.utils import np_to_triton_dtype

        config = self.model_config(model)
        dims = {i["name"]: i.get("dims", []) for i in config["input"]}
        tensors = []
        for name, value in inputs.items():
            if name not in dims:
                raise PermanentError(f"triton model {model!r} has no input {name!r} (inputs: {', '.join(dims)})")
            array = np.asarray(value)
            # Per-item scalars (texts) are dims [1] in a model config: add that axis.
            while array.ndim < 1 + len(dims[name]):
                array = array[..., None]
            if array.dtype.kind in "USO":
                array = array.astype(object)
            tensor = self.grpc.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            tensors.append(tensor)
        outputs = [self.grpc.InferRequestedOutput(o["name"]) for o in config["output"]]
        result = self._call(
            f"model {model!r}",
            self.client.infer,
            model,
            tensors,
            outputs=outputs,
            client_timeout=self.config.triton_timeout_s,
        )
        return {o["name"]: result.as_numpy(o["name"]) for o in config["output"]}

    def infer(self, model: str, inputs: Tensors) -> dict[str, np.ndarray]:
        if not inputs:
            raise PermanentError(f"no input tensors for triton model {model!r}")
        size = len(next(iter(inputs.values())))
        most = self.model_config(model).get("max_batch_size", 0) or size
        if size <= most:
            return self._request(model, inputs)
        chunks = [{n: np.asarray(v)[i : i + most] for n, v in inputs.items()} for i in range(0, size, most)]
        parts = self._gather(model, chunks)
        return {name: _concatenate([p[name] for p in parts]) for name in parts[0]}

    def infer_each(self, model: str, each: Sequence[Tensors]) -> list[dict[str, np.ndarray]]:
        """One request per item, all in flight together: the server batches them as it sees fit."""
        return self._gather(model, list(each))

    def _gather(self, model: str, requests: list[Tensors]) -> list[dict[str, np.ndarray]]:
        self.model_config(model)  # fetched once, before the fan-out
        futures = [self.pool.submit(self._request, model, r) for r in requests]
        return [f.result() for f in futures]


def _concatenate(parts: list[np.ndarray]) -> np.ndarray:
    """Chunks of one batch; variable-size trailing dims (faces per frame) are padded with zeros, as
    the model itself pads them within a batch."""
    widest = tuple(max(p.shape[d] for p in parts) for d in range(1, parts[0].ndim))
    padded = [np.pad(p, [(0, 0)] + [(0, w - s) for w, s in zip(widest, p.shape[1:])]) for p in parts]
    return np.concatenate(padded)
