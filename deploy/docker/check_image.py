"""Run inside the image as it is built (`make image`): it fails the build when the runtime image holds
what only development needs (a package only requirements-dev.txt pins, a compiler, test suites) or
when FFmpeg or the product no longer load after the prune. A service's image (services.py) must load
that service: its stage's modules, the stage itself and its default models, real weights included.
Usage: python check_image.py CONTEXT [SERVICE]  (CONTEXT: the build context, bind-mounted)."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from importlib.metadata import distributions
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from services import FFMPEG, SERVICES, canonical, pinned  # noqa: E402 - beside this file

# What the image holding every service loads, by module: each must still import after the prune.
LOADED = ("faster_whisper", "pyarrow.parquet", "torch", "transformers", "emofactory.serve")


def dev_only(context: Path) -> set[str]:
    """Packages requirements-dev.txt pins that neither runtime requirements file does."""
    runtime = pinned(context / "requirements.txt") | pinned(context / "requirements-nodeps.txt")
    return pinned(context / "requirements-dev.txt") - runtime


def service_loads(service: str) -> None:
    """The service's stage package imported module by module (what it imports only where it runs
    included), the stage it serves made and its default models loaded."""
    from emofactory.core.stage import StageContext
    from emofactory.core.store import FileStore
    from emofactory.serve import served_class

    package = importlib.import_module(f"emofactory.stages.{service}")
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        importlib.import_module(module.name)
    with tempfile.TemporaryDirectory() as folder:
        served_class(service)(StageContext(FileStore(folder), folder)).prepare()


def problems(context: Path, service: str = "") -> list[str]:
    installed = {canonical(d.metadata["Name"]) for d in distributions()}
    found = [f"dev-only package {name}" for name in sorted(installed & dev_only(context))]
    found += [f"compiler {tool}" for tool in ("gcc", "cc", "g++", "clang", "make") if shutil.which(tool)]
    site = Path(sysconfig.get_paths()["purelib"])
    found += [f"test suite {p.relative_to(site)}" for p in site.glob("*/tests") if p.is_dir()]
    for tool in ("ffmpeg", "ffprobe") if not service or service in FFMPEG else ():
        run = subprocess.run([tool, "-version"], capture_output=True, text=True)
        if run.returncode != 0:
            found.append(f"{tool} does not start: {run.stderr.strip()[-300:]}")
    for what in (service,) if service else LOADED:
        try:
            service_loads(service) if service else importlib.import_module(what)
        except Exception as exc:  # any failure to load is the finding, reported with the rest
            found.append(f"{what} does not load: {exc!r}"[:400])
    return found


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[2:] and sys.argv[2] not in SERVICES:
        sys.exit(__doc__)
    found = problems(Path(sys.argv[1]), *sys.argv[2:])
    for line in found:
        print(f"image check: {line}", file=sys.stderr)
    sys.exit(1 if found else 0)
