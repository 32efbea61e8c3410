"""facex's facial-emotion CNN (MIT; the TFLite file inside the `facex` wheel, installed --no-deps and
never imported: it would pull in TensorFlow and OpenCV), run with LiteRT (`ai-edge-litert`).

Input, as facex prepares it: the face in grayscale, resized to 200x200, repeated over three
channels, in [0, 1]. Output: softmax over CLASSES."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from PIL import Image

from emofactory.core.errors import PermanentError
from emofactory.models import package_folder

CLASSES = ("anger", "disgust", "fear", "happy", "neutral", "sadness", "surprised")
INPUT_SIZE = 200


def bundled_path() -> Path:
    folder = package_folder("facex")
    if folder is None:
        raise PermanentError("the facex model needs `pip install --no-deps facex`")
    return folder / "assets" / "model_optimized.tflite"


def prepare(faces: np.ndarray) -> np.ndarray:
    """RGB uint8 crops [N, S, S, 3] -> [N, 200, 200, 3] gray in [0, 1]."""
    size = (INPUT_SIZE, INPUT_SIZE)
    gray = [np.asarray(Image.fromarray(f).convert("L").resize(size, Image.BILINEAR)) for f in faces]
    return np.repeat(np.stack(gray).astype(np.float32)[..., None] / 255.0, 3, axis=-1)


class Facex:
    def __init__(self, path: Path | str, threads: int = 0):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=threads or None)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.batch = 0
        self.lock = threading.Lock()  # an interpreter runs one call at a time

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities [N, 7] in CLASSES order."""
        x = prepare(faces)
        with self.lock:
            if len(x) != self.batch:  # the file's batch is 1: the interpreter is resized to each batch
                self.interpreter.resize_tensor_input(self.input, list(x.shape))
                self.interpreter.allocate_tensors()
                self.batch = len(x)
            self.interpreter.set_tensor(self.input, x)
            self.interpreter.invoke()
            return np.array(self.interpreter.get_tensor(self.output))
