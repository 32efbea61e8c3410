"""Where the test assets are (real labelled media and weights, used by path, never copied): the folder
EMOFACTORY_ASSETS names, else ../shared/assets beside the checkout. Tests and benchmarks only."""

from __future__ import annotations

import os
from pathlib import Path

ASSETS = Path(os.environ.get("EMOFACTORY_ASSETS", Path(__file__).resolve().parents[2] / "shared" / "assets"))
SER_WEIGHTS = ASSETS / "ser_weights" / "marcogdepinto_Emotion_Voice_Detection_Model.h5"


def present() -> bool:
    """The folder holds the assets (its MANIFEST), not merely exists."""
    return (ASSETS / "MANIFEST.tsv").is_file()
