"""Run inside the image as it is built (`make image`): it fails the build when the runtime image holds
what only development needs (a package only requirements-dev.txt pins, a compiler, test suites) or
when FFmpeg or the product no longer load after the prune.
Usage: python check_image.py CONTEXT  (the build context, bind-mounted)."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import distributions
from pathlib import Path

# What the product loads, by module: each must still import after the prune.
LOADED = ("faster_whisper", "pyarrow.parquet", "torch", "transformers", "emofactory.serve")


def pinned(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?==", line.strip())
        if match:
            names.add(match.group(1).lower().replace("_", "-"))
    return names


def dev_only(context: Path) -> set[str]:
    """Packages requirements-dev.txt pins that neither runtime requirements file does."""
    runtime = pinned(context / "requirements.txt") | pinned(context / "requirements-nodeps.txt")
    return pinned(context / "requirements-dev.txt") - runtime


def problems(context: Path) -> list[str]:
    installed = {d.metadata["Name"].lower().replace("_", "-") for d in distributions()}
    found = [f"dev-only package {name}" for name in sorted(installed & dev_only(context))]
    found += [f"compiler {tool}" for tool in ("gcc", "cc", "g++", "clang", "make") if shutil.which(tool)]
    site = Path(sysconfig.get_paths()["purelib"])
    found += [f"test suite {p.relative_to(site)}" for p in site.glob("*/tests") if p.is_dir()]
    for tool in ("ffmpeg", "ffprobe"):
        run = subprocess.run([tool, "-version"], capture_output=True, text=True)
        if run.returncode != 0:
            found.append(f"{tool} does not start: {run.stderr.strip()[-300:]}")
    for module in LOADED:
        try:
            importlib.import_module(module)
        except Exception as exc:  # any failure to load is the finding, reported with the rest
            found.append(f"{module} does not import: {exc!r}"[:400])
    return found


if __name__ == "__main__":
    found = problems(Path(sys.argv[1]))
    for line in found:
        print(f"image check: {line}", file=sys.stderr)
    sys.exit(1 if found else 0)
