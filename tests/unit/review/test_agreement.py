"""Majority vote, Fleiss' kappa against worked examples with known answers, the factory's agreement
with people, and Label Studio's task and export formats through the CLI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

from emofactory import cli
from emofactory.review.agreement import by_annotator, fleiss_kappa, majority, summary
from emofactory.review.labelstudio import annotations, label_config, tasks

# Wikipedia's worked example of Fleiss' kappa: 10 subjects, 14 raters, 5 categories; kappa 0.210.
WORKED = np.array(
    [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
     [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
)  # fmt: skip

# Fleiss (1971), Table 1: 30 patients, 6 psychiatrists each, 5 diagnoses (depression, personality
# disorder, schizophrenia, neurosis, other); kappa 0.430 overall and 0.245, 0.245, 0.520, 0.471,
# 0.566 per category, as the paper and R's irr give them. Counts as transcribed in the quadagree R
# package (data_raw/fleiss1971.csv).
FLEISS_1971 = np.array(
    [[0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0], [2, 0, 4, 0, 0],
     [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6], [1, 0, 0, 5, 0], [1, 1, 0, 4, 0],
     [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1], [0, 0, 5, 0, 1], [3, 0, 0, 1, 2], [5, 1, 0, 0, 0],
     [0, 2, 0, 4, 0], [1, 0, 2, 0, 3], [0, 0, 0, 0, 6], [0, 1, 0, 5, 0], [0, 2, 0, 1, 3], [2, 0, 0, 4, 0],
     [1, 0, 0, 4, 1], [0, 5, 0, 1, 0], [4, 0, 0, 0, 2], [0, 2, 0, 4, 0], [1, 0, 5, 0, 0], [0, 0, 0, 0, 6]]
)  # fmt: skip


def test_fleiss_kappa_and_majority_match_fleiss_1971():
    overall, per_class = fleiss_kappa(FLEISS_1971)
    assert round(overall, 3) == 0.430
    assert [round(k, 3) for k in per_class] == [0.245, 0.245, 0.520, 0.471, 0.566]
    # The same table as people's labels: each patient's majority; 3-3 splits (patients 2, 5, 13) are ties.
    diagnoses = ("anger", "disgust", "fear", "happiness", "sadness")  # five of our classes stand in
    found = {
        f"p{i}": {f"r{n}": d for n, d in enumerate(d for d, c in zip(diagnoses, row) for _ in range(c))}
        for i, row in enumerate(FLEISS_1971, 1)
    }
    result = summary(found, classes=diagnoses)
    assert result["kappa"] == pytest.approx(overall) and result["ambiguous"] == 3
    assert [p for p, m in result["majority"].items() if m is None] == ["p2", "p5", "p13"]
    assert result["majority"]["p1"] == "happiness" and result["majority"]["p8"] == "fear"


def test_each_annotator_is_compared_with_the_majority_of_the_others():
    found = {
        "c1": {"ann": "anger", "bea": "anger", "cem": "fear"},
        "c2": {"ann": "fear", "bea": "fear", "cem": "sadness"},
        "c3": {"ann": "anger", "bea": "fear", "cem": "fear"},  # ann's others agree on fear
        "c4": {"ann": "sadness", "bea": "anger"},  # for each, the other is one voice: compared
    }
    rows = by_annotator(found)
    # ann: c1 (bea, cem tie: not compared), c2 others tie, c3 others fear (no), c4 other anger (no)
    assert rows["ann"] == {"labels": 4, "compared": 2, "agrees": 0.0}
    # bea: c1 others tie, c2 tie, c3 others tie, c4 other sadness (no)
    assert rows["bea"] == {"labels": 4, "compared": 1, "agrees": 0.0}
    # cem: c1 others anger (no), c2 others fear (no), c3 others tie
    assert rows["cem"] == {"labels": 3, "compared": 2, "agrees": 0.0}
    agreeing = by_annotator({"c": {"a": "fear", "b": "fear", "c": "fear"}})
    assert all(row["agrees"] == 1.0 and row["compared"] == 1 for row in agreeing.values())


def test_fleiss_kappa_matches_worked_examples():
    overall, per_class = fleiss_kappa(WORKED)
    assert overall == pytest.approx(0.2099, abs=1e-4)
    for j in range(WORKED.shape[1]):  # a category's kappa is the kappa of "it or not" (Fleiss 1971, eq. 9)
        collapsed = np.stack([WORKED[:, j], WORKED.sum(axis=1) - WORKED[:, j]], axis=1)
        assert per_class[j] == pytest.approx(fleiss_kappa(collapsed)[0])
    # By hand: 3 clips, 3 raters, (3,0) (0,3) (2,1): P-bar 7/9, P-bar_e 41/81, kappa 22/40.
    overall, per_class = fleiss_kappa(np.array([[3, 0], [0, 3], [2, 1]]))
    assert overall == pytest.approx(0.55) and per_class == pytest.approx([0.55, 0.55])
    assert fleiss_kappa(np.array([[3, 0, 0], [0, 3, 0]]))[0] == pytest.approx(1.0)
    assert np.isnan(fleiss_kappa(np.array([[3, 0, 0], [0, 3, 0]]))[1][2])  # nobody chose it
    with pytest.raises(ValueError, match="at least two ratings"):
        fleiss_kappa(np.array([[1, 0], [2, 0]]))


def test_majority_ties_are_ambiguous():
    assert majority(["anger", "anger", "fear"]) == "anger"
    assert majority(["anger", "fear"]) is None and majority([]) is None
    assert majority(["sadness"]) == "sadness"


PEOPLE = {
    "c1": {"ann": "anger", "bob": "anger", "cyd": "anger"},
    "c2": {"ann": "happiness", "bob": "happiness", "cyd": "surprise"},
    "c3": {"ann": "fear", "bob": "sadness"},  # a tie: ambiguous
    "c4": {"ann": "neutral"},  # one label: a majority, but no part in kappa
}


def test_summary_reports_majorities_kappa_and_the_factorys_agreement():
    result = summary(PEOPLE, {"c1": "anger", "c2": "surprise", "c3": "fear", "c4": "neutral"})
    assert result["majority"] == {"c1": "anger", "c2": "happiness", "c3": None, "c4": "neutral"}
    assert result["ambiguous"] == 1
    assert result["kappa"] == pytest.approx(
        fleiss_kappa(np.array([[3, 0, 0, 0, 0], [0, 2, 1, 0, 0], [0, 0, 0, 1, 1]]))[0]
    )
    assert result["factory_agrees"] == pytest.approx(2 / 3)  # c1 and c4 of the three with a majority
    assert result["factory_agrees_per_class"] == {"anger": 1.0, "happiness": 0.0, "neutral": 1.0}


def export_of(people: dict) -> list[dict]:
    """A Label Studio export as it writes them: ids or user objects, a skipped and an unsure task."""
    out = []
    for n, (clip, by) in enumerate(people.items()):
        made = [
            {"id": 10 * n + i, "completed_by": {"email": who} if i % 2 else who,
             "result": [{"from_name": "emotion", "to_name": "video", "type": "choices", "value": {"choices": [label]}}]}
            for i, (who, label) in enumerate(by.items())
        ]  # fmt: skip
        made.append({"id": 99, "completed_by": "dan", "was_cancelled": True, "result": []})
        made.append(
            {"id": 98, "completed_by": "eve", "result": [{"from_name": "emotion", "value": {"choices": ["unsure"]}}]}
        )
        out.append({"id": n, "data": {"clip_id": clip, "video": "http://x/c.mp4"}, "annotations": made})
    return out


def test_label_studio_exports_give_the_same_majority_and_kappa(tmp_path):
    assert annotations(export_of(PEOPLE)) == PEOPLE  # skipped and unsure: no label
    bad = export_of({"c1": {"ann": "contempt"}})
    with pytest.raises(ValueError, match="task 0 \\(clip c1\\): unknown class 'contempt'"):
        annotations(bad)
    manifest = {"clips": [{"clip_id": "c1", "label": "anger", "transcript": "hi", "media": {"mp4": "media/c1.mp4"}}]}
    (task,) = tasks(manifest, "https://host/rel/")
    assert task == {"data": {"clip_id": "c1", "transcript": "hi", "video": "https://host/rel/media/c1.mp4"}}
    view = ET.fromstring(label_config())  # the factory's label is not shown; keys 1-8
    assert [c.get("hotkey") for c in view.iter("Choice")] == [str(i) for i in range(1, 9)]


def test_the_review_commands_round_trip_a_release(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    clips = [{"clip_id": c, "label": f, "transcript": "", "media": {"mp4": f"media/{c}.mp4"}} for c, f in
             (("c1", "anger"), ("c2", "surprise"), ("c3", "fear"), ("c4", "neutral"))]  # fmt: skip
    (release / "manifest.json").write_text(json.dumps({"clips": clips}))
    runner = CliRunner()
    made = runner.invoke(
        cli.main, ["review", "tasks", str(release), "--media-url", "http://h", "--out", str(tmp_path / "t.json")]
    )
    assert made.exit_code == 0, made.output
    assert len(json.loads((tmp_path / "t.json").read_text())) == 4 and (tmp_path / "t.xml").exists()
    export = tmp_path / "export.json"
    export.write_text(json.dumps(export_of(PEOPLE)))
    out = tmp_path / "agreement.json"
    done = runner.invoke(cli.main, ["review", "agreement", str(export), "--release", str(release), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "1 ambiguous" in done.output and "Fleiss' kappa" in done.output and "66.7%" in done.output
    assert json.loads(out.read_text())["majority"]["c2"] == "happiness"
    export.write_text(json.dumps(export_of({"c1": {"ann": "contempt"}})))
    refused = runner.invoke(cli.main, ["review", "agreement", str(export)])
    assert refused.exit_code != 0 and "unknown class 'contempt'" in refused.output
