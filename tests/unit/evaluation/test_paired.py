"""Fusion judged on face and speech files paired by label: which files pair, what each pair carries,
the labeler's own verdict on each, and the temperatures fitted where no file holds both."""

from __future__ import annotations

import numpy as np
import pytest

from emofactory.core.emotions import CANONICAL
from emofactory.evaluation.calibrate import calibrate
from emofactory.evaluation.paired import pair_predictions, paired_rows
from emofactory.stages.labeler.config import LabelerConfig


def probs(name: str, p: float = 0.9) -> dict:
    out = np.full(7, (1 - p) / 6)
    out[CANONICAL.index(name)] = p
    return {"probs": out.tolist()}


ROWS = [
    {"path": "face_happy.mp4", "label": "happiness", "speaker": "m1", "face": probs("happiness")},
    {"path": "face_angry.mp4", "label": "anger", "speaker": "m1", "face": probs("anger")},
    {"path": "voice_happy.wav", "label": "happiness", "speaker": "r1", "audio": probs("happiness"),
     "text": probs("neutral")},
    {"path": "av_happy.mp4", "label": "happiness", "speaker": "r2", "face": probs("surprise"),
     "audio": probs("happiness")},
    {"path": "photo.png", "label": "happiness", "speaker": "", "face": {"predicted": ""}},  # no face found
]  # fmt: skip


def test_each_face_file_pairs_with_each_other_speech_file_of_its_label():
    pairs = {p["path"]: p for p in paired_rows(ROWS)}
    assert set(pairs) == {
        "face_happy.mp4 + voice_happy.wav",
        "face_happy.mp4 + av_happy.mp4",
        "av_happy.mp4 + voice_happy.wav",
    }  # never a file with itself, never across labels, never a file without scores
    mixed = pairs["av_happy.mp4 + voice_happy.wav"]
    assert mixed["face"] == ROWS[3]["face"] and mixed["audio"] == ROWS[2]["audio"] and mixed["text"] == ROWS[2]["text"]
    assert mixed["speaker"] == "r1" and mixed["label"] == "happiness"
    assert "text" not in pairs["face_happy.mp4 + av_happy.mp4"]  # the AV file has no transcript


def test_the_labeler_judges_each_pair():
    pairs = {p["path"]: p for p in paired_rows(ROWS)}
    agree, disagree = (pairs["face_happy.mp4 + voice_happy.wav"], pairs["av_happy.mp4 + voice_happy.wav"])
    kept, rejected = pair_predictions([agree, disagree], LabelerConfig(modalities=("face", "audio")))
    assert kept.kept and kept.predicted == "happiness" and kept.truth == "happiness" and 0.5 < kept.confidence <= 1
    assert not rejected.kept  # face says surprise, the voice happiness: no agreement
    (three,) = pair_predictions([agree], LabelerConfig(modalities=("face", "audio", "text")))
    assert not three.kept  # the neutral transcript disagrees


def test_temperatures_are_fitted_on_pairs_where_no_file_holds_face_and_voice():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(40):
        truth = CANONICAL[i % 7]
        for m in ("face", "audio"):  # each file one modality, right 60 % of the time, saying 0.97
            said = truth if rng.random() < 0.6 else CANONICAL[int(rng.integers(7))]
            rows.append({"path": f"{m}{i}", "label": truth, "speaker": f"s{i % 3}", m: probs(said, 0.97)})
    found = calibrate(rows, ("face", "audio"))
    assert found["pairs"] == found["files"] > 100
    assert all(t > 1 for t in found["temperatures"].values()) and found["after"]["nll"] < found["before"]["nll"]
    with pytest.raises(ValueError, match="too few"):
        calibrate(rows, ("audio", "text"))  # no file has both, and speech modalities do not pair
