"""Fitting the fusion's temperatures: an overconfident modality is softened, the NLL falls, and the
written settings file is one the labeler reads."""

from __future__ import annotations

import numpy as np
import yaml

from emofactory.core.emotions import CANONICAL
from emofactory.evaluation.calibrate import calibrate, settings_file
from emofactory.stages.labeler.config import LabelerConfig, checked_options


def overconfident_rows(n: int = 60, seed: int = 0) -> list[dict]:
    """Two modalities right 40 % of the time, each saying so with probability 0.97."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        truth = int(rng.integers(7))
        row = {"label": CANONICAL[truth], "speaker": f"s{i % 4}"}
        for m in ("text", "audio"):
            said = truth if rng.random() < 0.4 else int(rng.integers(7))
            probs = np.full(7, 0.005)
            probs[said] = 0.97
            row[m] = {"probs": list(probs)}
        rows.append(row)
    return rows


def test_an_overconfident_pair_is_softened_and_the_file_loads():
    found = calibrate(overconfident_rows(), ("text", "audio"))
    assert all(t > 1 for t in found["temperatures"].values())
    assert found["after"]["nll"] < found["before"]["nll"] and found["after"]["ece"] < found["before"]["ece"]
    assert found["by_speaker"]["speakers"] == 4
    section = yaml.safe_load(settings_file(found))["labeler"]
    config = checked_options(LabelerConfig(**{k: tuple(v) for k, v in section.items()}), None)
    assert set(config.temperatures) == {"text", "audio"}
