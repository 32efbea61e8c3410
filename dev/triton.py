"""A local NVIDIA Triton Inference Server with our model repository, on 127.0.0.1, on the CPU: the
`tritonserver` binary and Python-backend stub that nvidia-pytriton bundles, run from Triton's own
venv (`make triton-venv`; NumPy 1.x, torch, the models' packages). `python -m dev.triton` runs
it in the foreground; tests start it through `TritonServer`.

In production Triton is its own container (deploy/triton/Dockerfile) with the same repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from emofactory.local import _DIRECT, ROOT, Started, _wait, free_port, stop_process, wait_for_signal

REPOSITORY = ROOT / "deploy" / "triton" / "models"
VENV = ROOT / ".venv-triton"


class TritonServer(Started):
    def __init__(
        self,
        data_dir: Path | str,
        models: tuple[str, ...] | None = None,
        env: dict[str, str] | None = None,
        repository: Path = REPOSITORY,
        venv: Path = VENV,
        grpc_port: int = 0,
    ):
        self.data_dir = Path(data_dir).resolve()
        everything = sorted(p.parent.name for p in repository.glob("*/config.pbtxt"))
        self.models = tuple(models) if models else tuple(everything)
        self.env = dict(env or {})
        self.repository = Path(repository).resolve()
        self.venv = Path(venv).resolve()
        self.ports = {"grpc": grpc_port or free_port(), "http": free_port(), "metrics": free_port()}
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """What EMO_MODELS__TRITON_URL takes: the gRPC endpoint."""
        return f"127.0.0.1:{self.ports['grpc']}"

    def _dist(self) -> tuple[Path, Path, str, str]:
        """The bundled server, its libraries, the venv's Python version and libpython's folder."""
        python = self.venv / "bin" / "python"
        if not python.exists():
            raise FileNotFoundError(f"no Triton venv at {self.venv}: run `make triton-venv`")
        probe = "import sys, sysconfig; print('%d.%d' % sys.version_info[:2], sysconfig.get_config_var('LIBDIR'))"
        version, libdir = subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split()
        site = self.venv / "lib" / f"python{version}" / "site-packages"
        return site / "pytriton" / "tritonserver", site / "nvidia_pytriton.libs", version, libdir

    def _backends(self, dist: Path, version: str) -> Path:
        """Triton looks for the Python backend's stub beside the backend; pytriton ships one stub per
        Python version, so the backend directory is assembled with the one that matches the venv."""
        backends = self.data_dir / "backends"
        python = backends / "python"
        python.mkdir(parents=True, exist_ok=True)
        for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
            shutil.copy2(dist / "backends" / "python" / name, python / name)
        shutil.copy2(dist / "python_backend_stubs" / version / "triton_python_backend_stub", python)
        return backends

    def command(self) -> tuple[list[str], dict[str, str]]:
        dist, libs, version, libdir = self._dist()
        args = [
            str(dist / "bin" / "tritonserver"),
            f"--model-repository={self.repository}",
            f"--backend-directory={self._backends(dist, version)}",
            "--model-control-mode=explicit",
            *(f"--load-model={m}" for m in self.models),
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.ports['grpc']}",
            "--http-address=127.0.0.1",
            f"--http-port={self.ports['http']}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={self.ports['metrics']}",
            "--log-verbose=0",
        ]
        env = {
            **os.environ,
            **self.env,
            # The stub embeds the venv's libpython and finds the venv (and its site-packages) through
            # the `python3` first on PATH; our model code comes from src/ (its working directory: the
            # stub does not pass PYTHONPATH on to every model process).
            "LD_LIBRARY_PATH": ":".join(filter(None, [str(libs), libdir, os.environ.get("LD_LIBRARY_PATH")])),
            "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(ROOT / "src"),
        }
        return args, env

    def start(self, timeout: float = 120) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args, env = self.command()
        log = open(self.data_dir / "triton.log", "ab")
        self.proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT / "src", start_new_session=True
        )
        log.close()
        try:
            _wait(self.ready, "tritonserver", timeout=timeout, proc=self.proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}:\n{self.log_tail()}") from exc

    def ready(self) -> bool:
        """Every model loaded (Triton answers 400 until then)."""
        with _DIRECT.open(f"http://127.0.0.1:{self.ports['http']}/v2/health/ready", timeout=1) as response:
            return response.status == 200

    def stop(self) -> None:
        stop_process(self.proc, timeout=30)  # Triton drains in-flight requests first

    def log_tail(self, lines: int = 40) -> str:
        path = self.data_dir / "triton.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def main() -> None:
    """Foreground server: EMO_TRITON_GRPC_PORT (default 8001), EMO_TRITON_MODELS (comma list, default
    all in the repository); EMO_MODELS__* settings reach the models."""
    import signal

    port = int(os.environ.get("EMO_TRITON_GRPC_PORT", "8001"))
    models = tuple(m for m in os.environ.get("EMO_TRITON_MODELS", "").split(",") if m)
    data_dir = Path(os.environ.get("EMO_DATA_DIR", ROOT / ".emofactory")) / "triton"
    with TritonServer(data_dir, models or None, grpc_port=port) as server:
        print(f"triton ready: grpc {server.url}, models {', '.join(server.models)}; logs in {data_dir}", flush=True)
        wait_for_signal(lambda: server.proc.poll() is None)
    if server.proc.returncode not in (0, None, -signal.SIGTERM):
        sys.exit(f"tritonserver exited with {server.proc.returncode}:\n{server.log_tail()}")
