"""`emofactory train` on a small generated release: each modality learns what the release holds,
the same seed gives the same model and figures, a teacher's labels replace the release's on the
train and validation splits, and a trained audio model is the labeler's speech model by path."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest
from click.testing import CliRunner

from emofactory import cli
from emofactory.core.classes import CANONICAL
from emofactory.core.config import ModelsConfig
from emofactory.evaluation.metrics import scores
from emofactory.models.registry import load_speech_emotion
from emofactory.training.baseline import TrainConfig
from emofactory.training.run import train_release

RATE = 16000
MFCC = ["--audio-features", "mfcc"]  # the fast features, where the test is not about them
SENTENCES = {
    "anger": "I am furious with you, get out!",
    "disgust": "That is revolting and gross.",
    "fear": "I am terrified, please help me.",
    "happiness": "What a wonderful day, I love it!",
    "sadness": "I miss her so much, I keep crying.",
    "surprise": "Wow, I did not expect that at all!",
    "neutral": "The meeting is at three o'clock.",
}


def tone(label: str, n: int) -> np.ndarray:
    """A class's own pitch (and a little noise): what the audio baseline can learn."""
    t = np.arange(RATE) / RATE
    noise = np.random.default_rng(n).normal(0, 0.02, RATE)
    return 0.3 * np.sin(2 * np.pi * (150 + 120 * CANONICAL.index(label)) * t) + noise


def write_wav(path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def generated_release(root, per_class: int = 8) -> dict:
    """A release folder as `emofactory release` writes it: per class 5 train, 1 validation and the
    rest test clips, each with a WAV, a transcript, and face scores that name the class."""
    (root / "media").mkdir(parents=True)
    clips = []
    for label in CANONICAL:
        for n in range(per_class):
            clip_id = f"job_v-{label}-{n}"
            write_wav(root / "media" / f"{clip_id}.wav", tone(label, n))
            face = {c: (0.9 if c == label else 0.1 / 6) for c in CANONICAL}
            split = "train" if n < 5 else "validation" if n == 5 else "test"
            clips.append({"clip_id": clip_id, "label": label, "split": split, "transcript": SENTENCES[label],
                          "start_s": 0.0, "end_s": 1.0, "confidence": 0.9,
                          "scores": {"face": face}, "media": {"wav": f"media/{clip_id}.wav"}})  # fmt: skip
    manifest = {"release_id": "rgenerated000001", "name": "generated", "clips": clips}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return manifest


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    generated_release(root)
    return root


def test_each_modality_learns_the_release_and_the_same_seed_gives_the_same_model(release, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        cli.main, ["train", str(release), "--modality", "audio", "--out", str(tmp_path / "a"), *MFCC]
    )
    assert result.exit_code == 0, result.output
    assert "weighted F1" in result.output and all(c in result.output for c in CANONICAL)
    first = json.loads((tmp_path / "a" / "results.json").read_text())
    assert first["release_id"] == "rgenerated000001" and first["clips"]["audio"]["train"] == 35
    assert first["test"]["audio"]["uar"] >= 0.8  # seven pitches, a handful of clips each
    assert (tmp_path / "a" / "confusion.png").stat().st_size > 5000
    card = json.loads((tmp_path / "a" / "audio" / "baseline.json").read_text())
    assert card["release_id"] == "rgenerated000001" and card["test"]["uar"] == first["test"]["audio"]["uar"]
    again = train_release(release, "audio", tmp_path / "b", audio_features="mfcc")
    assert again["test"] == first["test"] and again["epochs"] == first["epochs"]
    weights = [(tmp_path / d / "audio" / "model.pt").read_bytes() for d in ("a", "b")]
    assert weights[0] == weights[1]
    other = train_release(release, "audio", tmp_path / "c", TrainConfig(seed=1), audio_features="mfcc")
    assert (tmp_path / "c" / "audio" / "model.pt").read_bytes() != weights[0] and other["test"]["audio"]["n"] == 14

    fused = train_release(release, "fusion", tmp_path / "f", audio_features="mfcc")
    assert set(fused["test"]) == {"audio", "text", "fusion"} and "face" in fused["skipped"]  # no frames here
    assert fused["test"]["text"]["uar"] >= 0.8 and fused["test"]["fusion"]["uar"] >= 0.8


def test_a_teacher_labels_what_it_is_sure_of_and_the_test_split_keeps_the_release_labels(release, tmp_path):
    manifest = json.loads((release / "manifest.json").read_text())
    shaky = dict(manifest)
    shaky["clips"] = [dict(c) for c in manifest["clips"]]
    for clip in shaky["clips"][::3]:  # a third of the clips: the face is unsure
        clip["scores"] = {"face": dict.fromkeys(CANONICAL, 1 / 7)}
    root = tmp_path / "shaky"
    (root / "media").mkdir(parents=True)
    for path in (release / "media").iterdir():
        (root / "media" / path.name).symlink_to(path)
    (root / "manifest.json").write_text(json.dumps(shaky))
    args = ["train", str(root), "--modality", "audio", "--teacher", "face", "--teacher-min-confidence", "0.5", *MFCC]
    assert CliRunner().invoke(cli.main, args).exit_code == 0
    result = json.loads((root / "baselines" / "audio-from-face" / "results.json").read_text())
    report = (root / "report" / "report.html").read_text()  # the release's report links it
    assert "Baselines trained on this release" in report and "../baselines/audio-from-face/results.json" in report
    sure = [c for c in shaky["clips"] if max(c["scores"]["face"].values()) >= 0.5]
    assert result["clips"]["audio"]["train"] == sum(c["split"] == "train" for c in sure)
    assert result["clips"]["audio"]["test"] == sum(c["split"] == "test" for c in shaky["clips"])
    assert result["teacher"] == "face"


def test_a_trained_audio_baseline_is_the_labelers_speech_model_by_path(release, tmp_path):
    """(With Whisper's features, the default, in tests/integration/test_train_loop.py.)"""
    train_release(release, "audio", tmp_path, audio_features="mfcc")
    model = load_speech_emotion(ModelsConfig(speech_emotion_path=str(tmp_path / "audio")))
    right = 0
    for label in CANONICAL:
        probs = model({"audio": tone(label, 99)[None].astype(np.float32), "sample_rate": np.array([[RATE]])})
        assert probs["probabilities"].shape == (1, 7) and abs(probs["probabilities"].sum() - 1) < 1e-4
        right += CANONICAL[int(probs["probabilities"].argmax())] == label
    assert right >= 5  # unseen clips of the seven pitches


@pytest.mark.hostile
def test_a_folder_that_is_no_release_is_a_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"release_id": "r1", "clips": [{"clip_id": "c1"}]}))
    for folder, message in ((tmp_path / "absent", "not found"), (tmp_path, "clip 'c1' lacks")):
        folder.mkdir(exist_ok=True)
        result = CliRunner().invoke(cli.main, ["train", str(folder), "--modality", "audio"])
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_metrics_match_a_hand_checked_confusion_matrix():
    truths = ["anger", "anger", "anger", "fear", "fear", "neutral"]
    predicted = ["anger", "anger", "fear", "fear", "", "anger"]  # "": the modality gave nothing
    found = scores(truths, predicted)
    # anger: tp 2, predicted 3, true 3; fear: tp 1, predicted 2, true 2; neutral: tp 0, true 1
    assert found["per_class"]["anger"]["precision"] == pytest.approx(2 / 3)
    assert found["per_class"]["anger"]["recall"] == pytest.approx(2 / 3)
    assert found["per_class"]["fear"]["f1"] == pytest.approx(0.5)
    assert found["accuracy"] == pytest.approx(3 / 6)
    assert found["uar"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert found["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 0.5 + 0) / 6)
    assert found["confusion"][0][:3] == [2, 0, 1] and sum(found["confusion"][2]) == 1  # the miss is in no column
