"""Each service's image leaves out what only other services load (deploy/docker/services.py): here, in
the development venv, each service is loaded the way its image's build check does it (its stage's
modules, the stage, its default models) with every package its image would not hold made unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from deploy.docker.services import PACKAGES, SERVICES, canonical, installed_packages, kept
from emofactory.pipeline import NAMES

ROOT = Path(__file__).resolve().parents[3]
# Loads the service with the modules of the packages left out raising ImportError, as in its image.
# (The path finder wrapped: for those it finds nothing, as where they are not installed.)
LOAD_WITHOUT = """
import importlib.machinery, json, sys
sys.path.insert(0, "deploy/docker")
from services import canonical
blocked, dropped = (set(json.loads(arg)) for arg in sys.argv[2:4])
class LeftOut:
    @staticmethod
    def find_distributions(*args, **kwargs):
        found = importlib.machinery.PathFinder.find_distributions(*args, **kwargs)
        return (d for d in found if canonical(d.metadata["Name"]) not in dropped)
    invalidate_caches = staticmethod(importlib.machinery.PathFinder.invalidate_caches)
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] not in blocked:
            return importlib.machinery.PathFinder.find_spec(name, path, target)
sys.meta_path[sys.meta_path.index(importlib.machinery.PathFinder)] = LeftOut
from check_image import service_loads
service_loads(sys.argv[1])
"""


def left_out(service: str) -> tuple[set[str], set[str]]:
    """The packages the service's image leaves out, and the top-level modules only they provide."""
    installed = installed_packages()
    keep = kept(service, installed, ROOT)
    modules = {
        module
        for module, dists in packages_distributions().items()
        if not {canonical(d) for d in dists} & keep and not module.startswith("_")
    }
    return set(installed) - keep, modules


def test_what_a_service_keeps_follows_its_packages():
    assert SERVICES == NAMES and set(PACKAGES) == set(NAMES)  # services.py runs where emofactory is not
    installed = installed_packages()
    vision, catalog, asr = (kept(s, installed, ROOT) for s in ("vision", "catalog", "asr"))
    assert {"torch", "numpy", "grpcio"} <= vision and not {"pyarrow", "ctranslate2", "sympy"} & vision
    # psycopg[binary]: the extra a pin asks for comes with it (libpq inside, for PostgreSQL)
    assert {"pyarrow", "av", "sqlalchemy", "psycopg-binary"} <= catalog and not {"torch", "transformers"} & catalog
    # what only a kept package requires comes with it: av and onnxruntime with faster-whisper
    assert {"av", "onnxruntime", "ctranslate2"} <= asr and "torch" not in asr


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_loads_without_what_its_image_leaves_out(service, tmp_path):
    packages, modules = left_out(service)
    run = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT, service, json.dumps(sorted(modules)), json.dumps(sorted(packages))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
