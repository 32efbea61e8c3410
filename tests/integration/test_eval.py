"""`emofactory eval` end to end on generated media named in the RAVDESS scheme: the in-process
pipeline, per-modality and fused figures, the report files."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from dev import sample
from emofactory import cli


def test_eval_measures_each_modality_on_a_labelled_folder(tmp_path, speech_sample):
    folder = tmp_path / "set"
    folder.mkdir()
    # RAVDESS codes: modality 01 audio-visual, 02 video-only; emotion 03 happy (the astronaut smiles).
    shutil.copy(speech_sample[0], folder / "01-01-03-01-01-01-01.mp4")
    face = sample.face_image(tmp_path / "face.png")
    sample.mux_video(speech_sample[0].with_suffix(".wav"), folder / "02-01-03-01-01-01-02.mp4", audio=False, face=face)
    out = tmp_path / "eval"
    config = tmp_path / "job.yaml"
    config.write_text("job:\n  labeler:\n    modalities: [face]\n    min_modalities: 1\n")
    result = CliRunner().invoke(cli.main, ["eval", str(folder), "--out", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "2 labelled files" in result.output and "right of kept" in result.output
    report = json.loads((out / "eval.json").read_text())
    figures = report["figures"]
    assert figures["face"]["n"] == 2 and figures["face"]["answered"] == 2  # the silent one: its whole file
    assert figures["fused"]["n"] == 1 and figures["audio"]["n"] == 1  # only the file with audio has speech
    assert figures["fused (paired)"]["n"] == 1  # the silent file's face with the other file's speech
    assert set(figures["face"]["per_class"]) == {
        "anger",
        "disgust",
        "fear",
        "happiness",
        "sadness",
        "surprise",
        "neutral",
    }
    (av,) = [f for f in report["files"] if f["path"].endswith("01-01-03-01-01-01-01.mp4")]
    assert av["label"] == "happiness" and av["fused"]["kept"] and not av["failure"]
    assert (out / "confusion.png").stat().st_size > 1000 and (out / "curve.png").stat().st_size > 1000
