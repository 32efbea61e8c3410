"""Models in the formats users bring, by path: transformers folders (audio-, image-, text-classification)
and ONNX faces with a model card. Each test saves a tiny randomly initialised model of its kind, then
checks loading, batching and the class mapping against the model run directly."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
import torch

from emofactory.core.classes import CANONICAL
from emofactory.core.config import ModelsConfig
from emofactory.core.errors import PermanentError
from emofactory.models.backends import InProcessBackend
from emofactory.models.info import face_model, speech_model, text_model
from emofactory.models.registry import LOADERS
from tests.models import FACE_CLASSES, onnx_face, tiny_audio_classifier, tiny_image_classifier, tiny_text_classifier


def backend(**settings) -> InProcessBackend:
    return InProcessBackend(ModelsConfig(**settings), LOADERS)


def canonical(probs: np.ndarray, classes: list[str], mapping: dict[str, str]) -> np.ndarray:
    """The expected canonical probabilities, mapped by hand."""
    out = np.zeros((len(probs), 7))
    for i, name in enumerate(classes):
        if mapping.get(name):
            out[:, CANONICAL.index(mapping[name])] += probs[:, i]
    return out / out.sum(axis=1, keepdims=True)


FACE_MAP = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "neutral": "neutral",
            "sad": "sadness", "surprise": "surprise"}  # fmt: skip


def test_a_transformers_image_classifier_labels_face_crops(tmp_path):
    folder = tiny_image_classifier(tmp_path / "vit-face")
    info = face_model(ModelsConfig(facial_emotion_path=str(folder)))
    assert (info.format, info.name, info.classes, info.licence) == ("transformers", "vit-face", FACE_CLASSES, "mit")
    faces = np.random.RandomState(0).randint(0, 255, (3, 112, 112, 3)).astype(np.uint8)
    probs = backend(facial_emotion_path=str(folder)).infer("facial_emotion", {"faces": faces})["probabilities"]
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor, model = (
        AutoImageProcessor.from_pretrained(folder),
        AutoModelForImageClassification.from_pretrained(folder),
    )
    with torch.no_grad():
        direct = torch.softmax(model(**processor(images=list(faces), return_tensors="pt")).logits, -1).numpy()
    np.testing.assert_allclose(probs, canonical(direct, list(FACE_CLASSES), FACE_MAP), atol=1e-5)
    one = backend(facial_emotion_path=str(folder)).infer("facial_emotion", {"faces": faces[1:2]})["probabilities"]
    np.testing.assert_allclose(one[0], probs[1], atol=1e-5)  # a batch gives what each face alone gives


def test_a_transformers_audio_classifier_hears_its_own_rate(tmp_path):
    folder = tiny_audio_classifier(tmp_path / "w2v-ser")  # SUPERB-ER's classes: neu, hap, ang, sad
    assert speech_model(ModelsConfig(speech_emotion_path=str(folder))).classes == ("neu", "hap", "ang", "sad")
    clip = np.random.RandomState(1).uniform(-0.5, 0.5, 48000).astype(np.float32)
    inputs = {"audio": clip[None], "sample_rate": np.array([[48000]], np.int32)}
    probs = backend(speech_emotion_path=str(folder)).infer("speech_emotion", inputs)["probabilities"]
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    extractor, model = (
        AutoFeatureExtractor.from_pretrained(folder),
        AutoModelForAudioClassification.from_pretrained(folder),
    )
    at_16k = soxr.resample(clip, 48000, 16000, "HQ")
    with torch.no_grad():
        direct = torch.softmax(
            model(**extractor([at_16k], sampling_rate=16000, return_tensors="pt")).logits, -1
        ).numpy()
    mapping = {"neu": "neutral", "hap": "happiness", "ang": "anger", "sad": "sadness"}
    np.testing.assert_allclose(probs, canonical(direct, ["neu", "hap", "ang", "sad"], mapping), atol=1e-5)
    absent = [CANONICAL.index(c) for c in ("disgust", "fear", "surprise")]
    assert (probs[0, absent] == 0).all()  # classes the model lacks get nothing


def test_a_transformers_text_classifier_uses_its_tokenizer(tmp_path):
    folder = tiny_text_classifier(tmp_path / "bert-emotion")  # joy, anger, neutral (j-hartmann style names)
    info = text_model(ModelsConfig(text_emotion_path=str(folder)))
    assert (info.format, info.classes) == ("transformers", ("joy", "anger", "neutral"))
    texts = np.array([b"i am so happy", b"so sad", b"i am"], dtype=object)
    probs = backend(text_emotion_path=str(folder)).infer("text_emotion", {"texts": texts})["probabilities"]
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModelForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        batch = tokenizer([t.decode() for t in texts], padding=True, return_tensors="pt")
        direct = torch.softmax(model(**batch).logits, -1).numpy()
    mapping = {"joy": "happiness", "anger": "anger", "neutral": "neutral"}
    np.testing.assert_allclose(probs, canonical(direct, ["joy", "anger", "neutral"], mapping), atol=1e-5)


def test_a_sentence_embedding_folder_stays_zero_shot(tmp_path):
    from emofactory.models.text_emotion import bundled_model_path

    info = text_model(ModelsConfig(text_emotion_path=str(bundled_model_path())))
    assert (info.format, info.name) == ("sentence-embeddings", "minilm-zero-shot")


def test_an_onnx_face_model_is_prepared_as_its_card_says(tmp_path):
    hsemotion = ["Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
    path, weights = onnx_face(tmp_path / "enet.onnx", hsemotion, size=32)
    card = {"name": "hse-tiny", "classes": hsemotion, "input_size": 32, "colour": "bgr", "mean": [0.5, 0.4, 0.3],
            "std": [0.2, 0.25, 0.3], "output": "logits", "licence": "Apache-2.0"}  # fmt: skip
    import yaml

    path.with_suffix(".yaml").write_text(yaml.safe_dump(card))
    info = face_model(ModelsConfig(facial_emotion_path=str(path)))
    assert (info.format, info.name, info.licence, len(info.classes)) == ("onnx", "hse-tiny", "Apache-2.0", 8)
    faces = np.random.RandomState(2).randint(0, 255, (2, 64, 64, 3)).astype(np.uint8)
    probs = backend(facial_emotion_path=str(path)).infer("facial_emotion", {"faces": faces})["probabilities"]
    from PIL import Image

    x = np.stack([np.asarray(Image.fromarray(f).resize((32, 32), Image.BILINEAR)) for f in faces]).astype(np.float32)
    x = (x[..., ::-1] / 255 - np.array([0.5, 0.4, 0.3])) / np.array([0.2, 0.25, 0.3])  # BGR, normalised
    logits = x.mean(axis=(1, 2)) @ weights  # the graph: global average pool, then a linear layer
    direct = np.exp(logits - logits.max(1, keepdims=True))
    direct /= direct.sum(1, keepdims=True)
    mapping = {n: n.lower() for n in hsemotion} | {"Contempt": None}
    np.testing.assert_allclose(probs, canonical(direct, hsemotion, mapping), atol=1e-4)


def test_a_model_card_that_is_missing_or_wrong_is_a_clear_error(tmp_path):
    path, _ = onnx_face(tmp_path / "face.onnx", ["happy", "sad"], size=16)
    with pytest.raises(PermanentError, match="no model card beside it"):
        face_model(ModelsConfig(facial_emotion_path=str(path)))
    path.with_suffix(".json").write_text('{"classes": ["happy", "sad"], "input_size": 16, "colour": "cmyk"}')
    with pytest.raises(PermanentError, match="colour must be rgb, bgr or gray"):
        face_model(ModelsConfig(facial_emotion_path=str(path)))
    path.with_suffix(".json").write_text('{"classes": ["happy", "sad", "fear"], "input_size": 16}')
    with pytest.raises(PermanentError, match="gives 2 scores, its card names 3 classes"):
        backend(facial_emotion_path=str(path)).infer("facial_emotion", {"faces": np.zeros((1, 16, 16, 3), np.uint8)})


def test_class_names_no_table_knows_are_an_error_naming_them(tmp_path):
    folder = tiny_image_classifier(tmp_path / "odd", classes=("happy", "bored", "sleepy"))
    with pytest.raises(PermanentError, match=r"class names \['bored', 'sleepy'\] have no canonical emotion"):
        backend(facial_emotion_path=str(folder)).infer("facial_emotion", {"faces": np.zeros((1, 32, 32, 3), np.uint8)})


def test_paths_that_are_no_model_are_refused_naming_the_setting(tmp_path):
    with pytest.raises(PermanentError, match="models.speech_emotion_path: .* does not exist"):
        speech_model(ModelsConfig(speech_emotion_path=str(tmp_path / "nope")))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(PermanentError, match="models.facial_emotion_path: .* is none of"):
        face_model(ModelsConfig(facial_emotion_path=str(tmp_path / "weights.bin")))
    (tmp_path / "folder").mkdir()
    with pytest.raises(PermanentError, match="not a transformers model folder"):
        face_model(ModelsConfig(facial_emotion_path=str(tmp_path / "folder")))


def test_emofactory_models_lists_each_modality_its_source_classes_and_licence(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from emofactory.cli import main

    folder = tiny_audio_classifier(tmp_path / "w2v-ser")
    monkeypatch.setenv("EMO_MODELS__SPEECH_EMOTION_PATH", str(folder))
    monkeypatch.setenv("EMO_MODELS__MODEL_BACKENDS", "speech_emotion=triton")
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0, result.output
    assert "audio: w2v-ser (transformers, runs triton, licence apache-2.0)" in result.output
    assert "neu→neutral, hap→happiness, ang→anger, sad→sadness" in result.output
    assert "face: mini-xception+facex (bundled-mean, runs inprocess, licence MIT)" in result.output
    monkeypatch.setenv("EMO_MODELS__FACIAL_EMOTION_PATH", str(tmp_path / "missing.onnx"))
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 1 and "face: none (models.facial_emotion_path:" in result.output


def test_the_bundled_face_model_is_the_mean_of_mini_xception_and_facex():
    from skimage import data

    from emofactory.models.facex import bundled_path
    from emofactory.models.info import bundled_mini_xception

    faces = {"faces": np.stack([data.astronaut()[40:200, 150:310], data.camera()[:160, :160, None].repeat(3, 2)])}
    default = backend().infer("facial_emotion", faces)["probabilities"]
    mini = backend(facial_emotion_path=str(bundled_mini_xception())).infer("facial_emotion", faces)["probabilities"]
    facex = backend(facial_emotion_path=str(bundled_path())).infer("facial_emotion", faces)["probabilities"]
    np.testing.assert_allclose(default, (mini + facex) / 2, atol=1e-6)
    assert not np.allclose(mini, facex, atol=0.05)  # two models, not one twice
    assert face_model(ModelsConfig()).name == "mini-xception+facex"
