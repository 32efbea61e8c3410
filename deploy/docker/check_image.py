"""Run inside the image as it is built (`make image`): it fails the build when the runtime image holds
what only development needs (a package only requirements-dev.txt pins, a compiler, test suites) or
when FFmpeg or the product no longer load after the prune.
Usage: python check_image.py CONTEXT  (the build context, bind-mounted)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import distributions
from pathlib import Path

# The product and what it loads still import after the prune.
import faster_whisper  # noqa: F401
import pyarrow.parquet  # noqa: F401
import torch  # noqa: F401
import transformers  # noqa: F401

import emofactory.serve  # noqa: F401


def pinned(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?==", line.strip())
        if match:
            names.add(match.group(1).lower().replace("_", "-"))
    return names


def problems(context: Path) -> list[str]:
    runtime = pinned(context / "requirements.txt") | pinned(context / "requirements-nodeps.txt")
    dev_only = pinned(context / "requirements-dev.txt") - runtime
    installed = {d.metadata["Name"].lower().replace("_", "-") for d in distributions()}
    found = [f"dev-only package {name}" for name in sorted(installed & dev_only)]
    found += [f"compiler {tool}" for tool in ("gcc", "cc", "g++", "clang", "make") if shutil.which(tool)]
    site = Path(sysconfig.get_paths()["purelib"])
    found += [f"test suite {p.relative_to(site)}" for p in site.glob("*/tests") if p.is_dir()]
    for tool in ("ffmpeg", "ffprobe"):
        run = subprocess.run([tool, "-version"], capture_output=True, text=True)
        if run.returncode != 0:
            found.append(f"{tool} does not start: {run.stderr.strip()[-300:]}")
    return found


if __name__ == "__main__":
    found = problems(Path(sys.argv[1]))
    for line in found:
        print(f"image check: {line}", file=sys.stderr)
    sys.exit(1 if found else 0)
