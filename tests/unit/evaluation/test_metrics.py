"""The evaluation's metrics against hand-worked examples, and the labelled-set readers."""

from __future__ import annotations

import pytest

from emofactory.core.errors import InvalidRequest
from emofactory.evaluation.labelled import from_name, labelled_set
from emofactory.evaluation.metrics import Prediction, accuracy_vs_yield, evaluate, scores


def test_scores_match_a_hand_worked_confusion():
    # anger: 3 items, 2 right, 1 called sadness; sadness: 2 items, 1 right, 1 called anger;
    # happiness: 1 item, not answered. Predicted anger 3 times (2 right), sadness twice (1 right).
    truths = ["anger", "anger", "anger", "sadness", "sadness", "happiness"]
    predicted = ["anger", "anger", "sadness", "sadness", "anger", ""]
    s = scores(truths, predicted)
    anger, sadness, happiness = (s["per_class"][c] for c in ("anger", "sadness", "happiness"))
    assert (anger["precision"], anger["recall"]) == pytest.approx((2 / 3, 2 / 3))
    assert (sadness["precision"], sadness["recall"], sadness["f1"]) == pytest.approx((1 / 2, 1 / 2, 1 / 2))
    assert (happiness["recall"], happiness["f1"], happiness["support"]) == (0.0, 0.0, 1)
    assert s["accuracy"] == pytest.approx(3 / 6)
    assert s["uar"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)  # classes without items stay out
    assert s["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 1 / 2 + 0) / 6)
    anger_row = s["classes"].index("anger")
    assert s["confusion"][anger_row][s["classes"].index("sadness")] == 1 and sum(map(sum, s["confusion"])) == 5


def test_yield_right_of_kept_and_the_curve():
    items = [
        Prediction("anger", "anger", 0.9, kept=True),
        Prediction("anger", "sadness", 0.8, kept=True),
        Prediction("fear", "fear", 0.4, kept=False),
        Prediction("fear", "", 0.0, kept=False),
    ]
    e = evaluate(items)
    assert (e["kept"], e["yield"], e["right_of_kept"], e["answered"]) == (2, 0.5, 0.5, 3)
    curve = accuracy_vs_yield(items, points=4)
    assert [(p["yield"], p["accuracy"]) for p in curve] == [(0.25, 1.0), (0.5, 0.5), (0.75, 2 / 3)]


def test_file_names_in_known_schemes_give_their_labels(tmp_path):
    assert from_name(tmp_path / "03-01-05-01-02-01-12.wav").label == "anger"
    assert from_name(tmp_path / "marcogdepinto_01-01-02-01-01-01-01_audio_from_av.wav").label == "neutral"  # calm
    assert from_name(tmp_path / "1002_DFA_HAP_XX.mp3").speaker == "crema_d:1002"
    assert from_name(tmp_path / "M030_front_surprised_level3_001.mp4").label == "surprise"
    assert from_name(tmp_path / "holiday.mp4") is None


def test_a_csv_names_its_bad_rows(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    csv = tmp_path / "set.csv"
    csv.write_text("path,label\na.wav,happy\na.wav,contempt\n")
    with pytest.raises(InvalidRequest, match=r"set.csv:3: unknown emotion 'contempt'"):
        labelled_set(csv)
    csv.write_text("path,label\na.wav,happy\nb.wav,sad\n")
    with pytest.raises(InvalidRequest, match=r"set.csv:3: no file 'b.wav'"):
        labelled_set(csv)
    csv.write_text("path,label\na.wav,happy\na.wav,\n")
    (item,) = labelled_set(csv)  # a row without a canonical label is not evaluated
    assert item.label == "happiness" and item.path == tmp_path / "a.wav"
