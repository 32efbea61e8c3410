"""Facial-emotion models in ONNX (HSEmotion / EmotiEffLib, say), run with ONNX Runtime. An ONNX file
does not say how its input was prepared, so a small model card beside it does: `<model>.yaml` (or
`.yml`, `.json`), for example HSEmotion's enet_b0_8_best_afew.onnx:

    name: hsemotion-enet-b0-8
    classes: [Anger, Contempt, Disgust, Fear, Happiness, Neutral, Sadness, Surprise]
    input_size: 224          # side in pixels, or [height, width]
    colour: rgb              # rgb, bgr or gray
    layout: nchw             # nchw or nhwc
    scale: 0.00392156862745  # pixel values are multiplied by this (1/255) ...
    mean: [0.485, 0.456, 0.406]   # ... then (x - mean) / std per channel
    std: [0.229, 0.224, 0.225]
    output: logits           # logits (softmax applied here) or probabilities
    licence: Apache-2.0
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from emofactory.core.classes import canonical_matrix, to_canonical
from emofactory.core.errors import PermanentError

CARD_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class FaceCard:
    name: str
    classes: tuple[str, ...]
    height: int
    width: int
    colour: str = "rgb"
    layout: str = "nchw"
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    output: str = "logits"
    licence: str = "not stated in the model card"


def _card_file(model: Path) -> Path:
    for suffix in CARD_SUFFIXES:
        if model.with_suffix(suffix).is_file():
            return model.with_suffix(suffix)
    raise PermanentError(f"{model}: no model card beside it ({', '.join(model.stem + s for s in CARD_SUFFIXES)})")


def _check(ok: bool, card: Path, field: str, why: str) -> None:
    if not ok:
        raise PermanentError(f"model card {card}: {field} {why}")


def read_card(model: Path) -> FaceCard:
    path = _card_file(model)
    try:
        raw = (json.loads if path.suffix == ".json" else yaml.safe_load)(path.read_text()) or {}
    except (ValueError, yaml.YAMLError) as exc:
        raise PermanentError(f"model card {path}: {exc}") from exc
    _check(isinstance(raw, dict), path, "the card", "must be a mapping")
    unknown = set(raw) - {
        "name",
        "classes",
        "input_size",
        "colour",
        "layout",
        "scale",
        "mean",
        "std",
        "output",
        "licence",
    }
    _check(not unknown, path, f"fields {sorted(unknown)}", "are unknown")
    classes = raw.get("classes")
    _check(isinstance(classes, list) and len(classes) >= 2, path, "classes", "must list the output's class names")
    size = raw.get("input_size")
    size = [size, size] if isinstance(size, int) else size
    _check(
        isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and 8 <= s <= 1024 for s in size),
        path,
        "input_size",
        "must be a side or [height, width] in 8..1024 pixels",
    )
    colour, layout, output = raw.get("colour", "rgb"), raw.get("layout", "nchw"), raw.get("output", "logits")
    _check(colour in ("rgb", "bgr", "gray"), path, "colour", f"must be rgb, bgr or gray, not {colour!r}")
    _check(layout in ("nchw", "nhwc"), path, "layout", f"must be nchw or nhwc, not {layout!r}")
    _check(output in ("logits", "probabilities"), path, "output", f"must be logits or probabilities, not {output!r}")
    channels = 1 if colour == "gray" else 3
    mean, std = tuple(raw.get("mean", [0.0] * channels)), tuple(raw.get("std", [1.0] * channels))
    for field, values in (("mean", mean), ("std", std)):
        _check(
            len(values) == channels and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values),
            path,
            field,
            f"must be {channels} finite numbers",
        )
    _check(all(v > 0 for v in std), path, "std", "must be positive")
    scale = raw.get("scale", 1 / 255)
    _check(isinstance(scale, (int, float)) and 0 < scale < math.inf, path, "scale", "must be a positive number")
    return FaceCard(
        name=str(raw.get("name") or model.stem), classes=tuple(map(str, classes)), height=size[0], width=size[1],
        colour=colour, layout=layout, scale=float(scale), mean=mean, std=std, output=output,
        licence=str(raw.get("licence", FaceCard.licence)),
    )  # fmt: skip


def prepare(faces: np.ndarray, card: FaceCard) -> np.ndarray:
    """RGB uint8 crops [N, S, S, 3] -> the model's input, as its card says."""
    mode = "L" if card.colour == "gray" else "RGB"
    images = [
        np.asarray(Image.fromarray(f).convert(mode).resize((card.width, card.height), Image.BILINEAR)) for f in faces
    ]
    x = np.stack(images).astype(np.float32).reshape(len(images), card.height, card.width, -1)
    if card.colour == "bgr":
        x = x[..., ::-1]
    x = (x * card.scale - np.float32(card.mean)) / np.float32(card.std)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if card.layout == "nchw" else x, np.float32)


class OnnxFace:
    def __init__(self, path: Path, threads: int = 0):
        import onnxruntime as ort

        self.card = read_card(path)
        self.matrix = canonical_matrix(self.card.classes, str(path))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        width = self.session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != len(self.card.classes):
            raise PermanentError(
                f"{path}: the model gives {width} scores, its card names {len(self.card.classes)} classes"
            )

    def __call__(self, inputs) -> dict[str, np.ndarray]:
        out = self.session.run(None, {self.input: prepare(np.asarray(inputs["faces"]), self.card)})[0]
        if self.card.output == "logits":
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        return {"probabilities": to_canonical(out, self.matrix)}
