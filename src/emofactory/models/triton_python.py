"""Triton Python-backend models around the same loaders the in-process backend uses, so a model
gives the same numbers wherever it runs. Each `deploy/triton/models/<name>/1/model.py` is one line:
`TritonPythonModel = triton_model("<name>")`.

Settings are ModelsConfig fields: the config.pbtxt `parameters` (a path there is relative to the
model's version folder), then EMO_MODELS__* env vars of the server, which win, so a deployment can
point at weights on a mounted volume without editing the repository."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from emofactory.core.config import ModelsConfig, load_section, with_settings

PATH_FIELDS = (
    "facial_emotion_path",
    "speech_emotion_path",
    "text_emotion_path",
    "whisper_path",
    "whisper_multilingual_path",
)


def models_config(
    parameters: Mapping[str, str], version_dir: Path, device: str, env: Mapping[str, str]
) -> ModelsConfig:
    values = dict(parameters)
    for name in PATH_FIELDS:
        if values.get(name):
            values[name] = str(version_dir / values[name])
    base = with_settings(ModelsConfig(), values, "config.pbtxt parameters")
    return dataclasses.replace(load_section(ModelsConfig, "models", env, base=base), device=device)


def group_by_shape(requests_inputs: list[dict[str, np.ndarray]]) -> dict[tuple, list[int]]:
    """Requests whose tensors have the same shape past the batch dimension can run as one batch;
    others (frames of another size, clips of another length) run apart, never padded."""
    groups: dict[tuple, list[int]] = {}
    for i, inputs in enumerate(requests_inputs):
        key = tuple((name, array.shape[1:]) for name, array in sorted(inputs.items()))
        groups.setdefault(key, []).append(i)
    return groups


def run_batched(run, requests_inputs: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray] | Exception]:
    """One model call per shape group; the outputs are split back by each request's batch size.
    An exception fails only the requests of its group."""
    results: list[dict[str, np.ndarray] | Exception] = [{}] * len(requests_inputs)
    for members in group_by_shape(requests_inputs).values():
        names = requests_inputs[members[0]].keys()
        batch = {n: np.concatenate([requests_inputs[i][n] for i in members]) for n in names}
        try:
            outputs = run(batch)
        except Exception as exc:  # reported on each request, the server goes on
            for i in members:
                results[i] = exc
            continue
        start = 0
        for i in members:
            size = len(next(iter(requests_inputs[i].values())))
            results[i] = {n: o[start : start + size] for n, o in outputs.items()}
            start += size
    return results


def triton_model(name: str):
    class TritonPythonModel:
        def initialize(self, args):
            import triton_python_backend_utils as pb_utils

            from emofactory.models.registry import LOADERS

            self.pb = pb_utils
            config = json.loads(args["model_config"])
            parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
            version_dir = Path(args["model_repository"]) / args["model_version"]
            gpu = args.get("model_instance_kind") == "GPU"
            device = f"cuda:{args['model_instance_device_id']}" if gpu else "cpu"
            self.inputs = [i["name"] for i in config["input"]]
            self.outputs = {o["name"]: pb_utils.triton_string_to_numpy(o["data_type"]) for o in config["output"]}
            self.run = LOADERS[name](models_config(parameters, version_dir, device, os.environ))

        def execute(self, requests):
            pb = self.pb
            inputs = [{n: pb.get_input_tensor_by_name(r, n).as_numpy() for n in self.inputs} for r in requests]
            responses = []
            for result in run_batched(self.run, inputs):
                if isinstance(result, Exception):
                    error = pb.TritonError(f"{name}: {type(result).__name__}: {result}")
                    responses.append(pb.InferenceResponse(output_tensors=[], error=error))
                    continue
                tensors = [pb.Tensor(n, np.ascontiguousarray(result[n], dtype=t)) for n, t in self.outputs.items()]
                responses.append(pb.InferenceResponse(output_tensors=tensors))
            return responses

    TritonPythonModel.__qualname__ = f"TritonPythonModel[{name}]"
    return TritonPythonModel
