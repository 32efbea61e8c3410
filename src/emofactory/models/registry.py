"""The models the in-process backend can load, by the names stages ask for. torch is imported where a
model needs it: the ASR's image (CTranslate2) holds none (deploy/docker/services.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emofactory.core.backend import Model
from emofactory.core.classes import canonical_matrix, to_canonical
from emofactory.core.config import ModelsConfig
from emofactory.models.info import bundled_mini_xception, face_model, speech_model, text_model


def _torch_setup(config: ModelsConfig) -> None:
    import torch

    if config.threads > 0:
        torch.set_num_threads(config.threads)


def load_face_detector(config: ModelsConfig) -> Model:
    from emofactory.models.mtcnn import FaceDetector

    _torch_setup(config)
    detector = FaceDetector(min_face_size=config.face_min_size, device=config.device)
    return lambda inputs: detector(np.asarray(inputs["images"]))


def _mini_xception(path: str, device: str) -> Model:
    import torch

    from emofactory.models.info import FER2013
    from emofactory.models.mini_xception import load_mini_xception, prepare

    model = load_mini_xception(path).to(device)
    matrix = canonical_matrix(FER2013, "mini-xception")

    @torch.inference_mode()
    def run(inputs):
        faces = torch.from_numpy(prepare(np.asarray(inputs["faces"], np.uint8))).to(device)
        return {"probabilities": to_canonical(torch.softmax(model(faces), dim=1).cpu().numpy(), matrix)}

    return run


def _facex(path: Path, threads: int) -> Model:
    from emofactory.models.facex import CLASSES, Facex

    model, matrix = Facex(path, threads), canonical_matrix(CLASSES, "facex")
    return lambda inputs: {"probabilities": to_canonical(model(np.asarray(inputs["faces"], np.uint8)), matrix)}


def load_facial_emotion(config: ModelsConfig) -> Model:
    """faces uint8 [N, S, S, 3] RGB crops -> canonical probabilities; each format prepares its own input."""
    info = face_model(config)
    _torch_setup(config)
    if info.format == "transformers":
        from emofactory.models.transformers_folders import load_image_classifier

        return load_image_classifier(info.source, config.device)
    if info.format == "onnx":
        from emofactory.models.onnx_face import OnnxFace

        return OnnxFace(Path(info.source), config.threads)
    if info.format == "tflite":
        return _facex(Path(info.source), config.threads)
    if info.format == "keras-hdf5":
        return _mini_xception(info.source, config.device)
    from emofactory.models.facex import bundled_path  # the bundled mean of the two

    models = (_mini_xception(str(bundled_mini_xception()), config.device), _facex(bundled_path(), config.threads))
    return lambda inputs: {"probabilities": sum(m(inputs)["probabilities"] for m in models) / len(models)}


def load_speech_emotion(config: ModelsConfig) -> Model:
    """audio float32 [N, samples] at sample_rate [N, 1] -> canonical probabilities."""
    info = speech_model(config)
    _torch_setup(config)
    if info.format == "transformers":
        from emofactory.models.transformers_folders import load_audio_classifier

        return load_audio_classifier(info.source, config.device)
    if info.format == "emofactory-baseline":
        from emofactory.models.baseline import load_audio_baseline

        return load_audio_baseline(Path(info.source))
    import torch

    from emofactory.models.ser_cnn import load_ser_cnn, ser_features

    model = load_ser_cnn(info.source)
    matrix = canonical_matrix(info.classes, info.name)

    @torch.inference_mode()
    def run(inputs):
        rate = int(np.asarray(inputs["sample_rate"]).reshape(-1)[0])
        audio = np.asarray(inputs["audio"], np.float32)
        features = np.stack([ser_features(clip, rate) for clip in audio]).astype(np.float32)
        return {"probabilities": to_canonical(torch.softmax(model(torch.from_numpy(features)), 1).numpy(), matrix)}

    return run


def load_text_emotion(config: ModelsConfig) -> Model:
    """texts bytes [N] -> canonical probabilities."""
    from emofactory.models.text_emotion import NrcTextEmotion, TextEmotion

    info = text_model(config)
    _torch_setup(config)
    if info.format == "transformers":
        from emofactory.models.transformers_folders import load_text_classifier

        return load_text_classifier(info.source, config.device)
    if info.format == "lexicon":
        model = NrcTextEmotion(info.source)
    else:
        model = TextEmotion(info.source, config.text_temperature, config.device)

    def run(inputs):
        texts = [t.decode() if isinstance(t, bytes) else str(t) for t in np.asarray(inputs["texts"]).reshape(-1)]
        return {"probabilities": np.exp(model(texts)).astype(np.float32)}

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
