"""The local stack: nats-server with JetStream, a SeaweedFS S3 server with credentials, the JetStream
topology, and the services as processes, all on 127.0.0.1 under one data directory. It stops all
it started. `python -m emofactory.local` runs it in the foreground until Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path

from grpc_health.v1 import health_pb2, health_pb2_grpc

from emofactory.core.bus import connect
from emofactory.core.channels import open_channel
from emofactory.core.config import BusConfig, ClientConfig
from emofactory.pipeline import NAMES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CREDENTIALS = "credentials.json"
NATS_USER = "emofactory"
REVIVE_PAUSE_S = 5.0  # a service is started again at most this often


# Ports handed out by this process: a port given to a server that has not bound it yet (or has
# stopped) is free to the kernel, which may give it again; two servers must never share one.
_HANDED_OUT: set[int] = set()


def free_port(paired: bool = False) -> int:
    """A free TCP port never handed out before by this process; `paired` also needs port + 10000 free
    (SeaweedFS's gRPC ports)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in _HANDED_OUT or (paired and (port >= 55000 or port + 10000 in _HANDED_OUT)):
            continue
        if paired:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            _HANDED_OUT.add(port + 10000)
        _HANDED_OUT.add(port)
        return port


def private_file(path: Path, text: str) -> Path:
    """Writes `text` to a file only its owner can read or write (credentials, and what holds them)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def credentials(data_dir: Path) -> dict[str, str]:
    """The stack's secrets: the S3 key pair, the NATS user's password and the services' bearer token,
    made at random once per data folder, then kept there, readable by its owner alone (the stored
    objects outlive one run, so the keys must too)."""
    path = data_dir / CREDENTIALS
    if not path.exists():
        made = {
            "access_key": f"emofactory-{secrets.token_hex(4)}",
            "secret_key": secrets.token_urlsafe(30),
            "nats_password": secrets.token_urlsafe(30),
            "grpc_token": secrets.token_urlsafe(30),
        }
        private_file(path, json.dumps(made))
    return json.loads(path.read_text())


def tls_files(data_dir: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost (openssl, P-256, ten years), made once
    per data folder; the keys readable by their owner alone."""
    folder = data_dir / "tls"
    files = {name: folder / name for name in ("ca.crt", "ca.key", "server.crt", "server.key")}
    if all(p.exists() for p in files.values()):
        return files
    folder.mkdir(mode=0o700, exist_ok=True)
    private_file(folder / "san.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", "/CN=emofactory CA"],
        ["req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "3650", "-extfile", "san.cnf"],
    ]  # fmt: skip
    for step in steps:
        subprocess.run(["openssl", *step], cwd=folder, check=True, capture_output=True, umask=0o077)
    return files


def _wait(check, what: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before it was ready")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


# Loopback checks never go through an http_proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_ok(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=1) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500


SERVING = health_pb2.HealthCheckResponse.SERVING


def grpc_health(address: str, client: ClientConfig | None = None) -> int:
    """The service's health status (SERVING, NOT_SERVING while it waits for its bus and topology)."""
    with open_channel(address, client or ClientConfig()) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1).status


def stop_process(proc: subprocess.Popen | None, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_signal(running=lambda: True) -> None:
    """Blocks until SIGINT or SIGTERM (or until `running()` turns false): the foreground commands."""
    stop = False

    def request_stop(*_):
        nonlocal stop
        stop = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    while not stop and running():
        time.sleep(0.2)


class Started(ABC):
    """`with X(...) as x:` starts x and always stops what it started, also when starting fails."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None:
        """Safe to call on a half-started or stopped instance."""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class LocalStack(Started):
    def __init__(
        self,
        data_dir: Path | str,
        services=NAMES,
        env: dict[str, str] | None = None,
        topology: Path | str = ROOT / "deploy" / "jetstream.yaml",
        provisioned: bool = True,
    ):
        """`provisioned` False: the topology is not applied, and services are only waited for until they
        answer (NOT_SERVING: waiting for it)."""
        self.data_dir = Path(data_dir).resolve()
        self.topology = Path(topology)
        self.provisioned = provisioned
        self.services = tuple(services)
        self.extra_env = dict(env or {})
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self.keys: dict[str, str] = {}
        self.tls: dict[str, Path] = {}
        self.started: dict[str, float] = {}

    # -- addresses and settings --------------------------------------------------------------
    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.ports['nats']}"

    @property
    def s3_endpoint(self) -> str:
        return f"127.0.0.1:{self.ports['s3']}"

    async def bus(self):
        """A NATS connection to this stack, as its user."""
        return await connect(
            BusConfig(
                url=self.nats_url, user=NATS_USER, password=self.keys["nats_password"], tls_ca=str(self.tls["ca.crt"])
            ),
            "stack",
        )

    def client_config(self) -> ClientConfig:
        return ClientConfig(tls_ca=str(self.tls["ca.crt"]), auth_token=self.keys["grpc_token"])

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    def addresses(self) -> dict[str, str]:
        """Each service's gRPC address, and the catalog's review page as `review`."""
        found = {name: self.address(name) for name in self.services}
        if "review" in self.ports:
            found["review"] = f"http://127.0.0.1:{self.ports['review']}"
        return found

    def metrics_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[f'{service}_metrics']}/metrics"

    def env(self) -> dict[str, str]:
        """EMO_* settings that point a client or a service at this stack."""
        env = {
            "EMO_BUS__URL": self.nats_url,
            "EMO_BUS__USER": NATS_USER,
            "EMO_BUS__PASSWORD": self.keys["nats_password"],
            "EMO_BUS__TLS_CA": str(self.tls["ca.crt"]),
            # The services speak TLS with a bearer token; clients trust the stack's own CA.
            "EMO_SERVER__TLS_CERT": str(self.tls["server.crt"]),
            "EMO_SERVER__TLS_KEY": str(self.tls["server.key"]),
            "EMO_SERVER__AUTH_TOKEN": self.keys["grpc_token"],
            "EMO_CLIENT__TLS_CA": str(self.tls["ca.crt"]),
            "EMO_CLIENT__AUTH_TOKEN": self.keys["grpc_token"],
            "EMO_STORE__ENDPOINT": self.s3_endpoint,
            "EMO_STORE__ACCESS_KEY": self.keys["access_key"],
            "EMO_STORE__SECRET_KEY": self.keys["secret_key"],
            "EMO_STORE__BUCKET": "emofactory",
            # The catalog's embedded SQLite database lives with the stack's data.
            "EMO_CATALOG__DATABASE_URL": f"sqlite:///{self.data_dir / 'catalog.db'}",
        }
        return {**env, **self.extra_env}

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # credentials, logs, the database: the user's alone
        self.keys, self.tls = credentials(self.data_dir), tls_files(self.data_dir)
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.start_nats()
        self.start_s3()
        if self.provisioned:
            self.provision()
        for name in self.services:
            self.ports[name], self.ports[f"{name}_metrics"] = free_port(), free_port()
        if "catalog" in self.services:
            self.ports["review"] = free_port()
        for name in self.services:
            self.start_service(name)
        for name in self.services:
            self.wait_service(name, SERVING if self.provisioned else None)

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.data_dir / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def start_nats(self) -> None:
        self.ports["nats"], self.ports["nats_monitor"] = free_port(), free_port()
        # The password in a file only the user reads, not on a command line that `ps` shows everyone;
        # clients must speak TLS (the stack's own certificate).
        password, cert, key = (
            json.dumps(str(v)) for v in (self.keys["nats_password"], self.tls["server.crt"], self.tls["server.key"])
        )
        conf = private_file(
            self.data_dir / "nats.conf",
            f'authorization {{ user: "{NATS_USER}", password: {password} }}\n'
            f"tls {{ cert_file: {cert}, key_file: {key} }}\n",
        )
        proc = self._spawn(
            "nats",
            [
                str(BIN / "nats-server"),
                "-c",
                str(conf),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.ports["nats"]),
                "-js",
                "-sd",
                str(self.data_dir / "nats"),
                "-m",
                str(self.ports["nats_monitor"]),
            ],
        )
        _wait(
            lambda: _http_ok(f"http://127.0.0.1:{self.ports['nats_monitor']}/healthz?js-enabled-only=true"),
            "nats-server",
            proc=proc,
        )

    def start_s3(self) -> None:
        s3_dir = self.data_dir / "s3"
        s3_dir.mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "emofactory",
                    "credentials": [{"accessKey": self.keys["access_key"], "secretKey": self.keys["secret_key"]}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        private_file(self.data_dir / "s3.json", json.dumps(identities))
        for name in ("s3", "master", "volume", "filer"):
            self.ports[name] = free_port(paired=True)
        proc = self._spawn(
            "s3",
            [
                str(BIN / "weed"),
                "mini",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={s3_dir}",
                f"-s3.port={self.ports['s3']}",
                f"-s3.config={self.data_dir / 's3.json'}",
                f"-master.port={self.ports['master']}",
                f"-volume.port={self.ports['volume']}",
                f"-filer.port={self.ports['filer']}",
                "-webdav=false",
                "-admin.ui=false",
                "-master.telemetry=false",
            ],
        )
        _wait(lambda: self._bucket_ready(), "SeaweedFS S3", timeout=60, proc=proc)

    def _bucket_ready(self) -> bool:
        from minio import Minio

        client = Minio(self.s3_endpoint, self.keys["access_key"], self.keys["secret_key"], secure=False)
        if not client.bucket_exists("emofactory"):
            client.make_bucket("emofactory")
        return True

    def provision(self) -> None:

        from emofactory.provision import load_topology, provision

        async def run():
            nc = await self.bus()
            try:
                await provision(nc.jetstream(), load_topology(self.topology))
            finally:
                await nc.close()

        asyncio.run(run())

    def service_env(self, name: str) -> dict[str, str]:
        env = {
            **os.environ,
            **self.env(),
            "PYTHONUNBUFFERED": "1",
            "EMO_SERVER__GRPC_PORT": str(self.ports[name]),
            "EMO_SERVER__METRICS_PORT": str(self.ports[f"{name}_metrics"]),
        }
        if name == "catalog":
            env["EMO_CATALOG__REVIEW_PORT"] = str(self.ports["review"])
        return env

    def start_service(self, name: str) -> None:
        self._spawn(name, [sys.executable, "-m", "emofactory.serve", name], env=self.service_env(name))
        self.started[name] = time.monotonic()

    def wait_service(self, name: str, status: int | None = SERVING) -> None:
        """Until the service's health says `status` (None: anything, once it answers)."""

        def ready() -> bool:
            answer = grpc_health(self.address(name), self.client_config())  # raises until it answers
            return status is None or answer == status

        _wait(ready, f"service {name}", timeout=60, proc=self.procs[name])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def add_replica(self, name: str) -> str:
        """Another process of a service (same consumer, so they share its messages); returns its name."""
        replica = f"{name}-{sum(1 for p in self.procs if p == name or p.startswith(f'{name}-')) + 1}"
        self.ports[replica], self.ports[f"{replica}_metrics"] = free_port(), free_port()
        env = {**self.service_env(name), "EMO_SERVER__GRPC_PORT": str(self.ports[replica])}
        env["EMO_CATALOG__REVIEW_PORT"] = "0"  # the first catalog process serves the review page
        env["EMO_SERVER__METRICS_PORT"] = str(self.ports[f"{replica}_metrics"])
        self._spawn(replica, [sys.executable, "-m", "emofactory.serve", name], env=env)
        self.wait_service(replica)
        return replica

    def revive(self) -> list[str]:
        """Starts again, on the same ports (clients keep their addresses), each service whose process
        has died; says which, with the exit code."""
        notes = []
        for name in self.services:
            proc = self.procs.get(name)
            if proc is None or proc.poll() is None or time.monotonic() - self.started[name] < REVIVE_PAUSE_S:
                continue  # alive, or died right after its start: a crash loop is slowed, not spun
            notes.append(f"{name} exited with code {proc.returncode}: restarted (log: logs/{name}.log)")
            self.start_service(name)
        return notes

    def restart(self, name: str) -> None:
        """Starts a service again (after `kill`) on fresh ports: the old ones may meanwhile serve as
        the local end of some outgoing connection."""
        self.ports[name], self.ports[f"{name}_metrics"] = free_port(), free_port()
        self.start_service(name)
        self.wait_service(name)

    def stop(self) -> None:
        # Services first (they drain into NATS and S3), then the servers.
        order = [n for n in self.procs if n not in ("nats", "s3")] + ["s3", "nats"]
        for name in order:
            stop_process(self.procs.get(name))

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.data_dir / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


STATE = "stack.json"


def state_of(data_dir: Path) -> dict | None:
    """What a running `python -m emofactory.local` wrote about itself (settings, addresses, pid), if it runs."""
    path = Path(data_dir) / STATE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    try:
        os.kill(state["pid"], 0)
    except (OSError, KeyError):
        return None
    return state


def main() -> None:
    """Runs the stack in the foreground until SIGINT or SIGTERM; `emofactory up` runs this detached."""
    data_dir = Path(os.environ.get("EMO_DATA_DIR", ROOT / ".emofactory" / "stack"))
    roots = os.environ.get("EMO_INGEST__LOCAL_ROOTS", f"{Path.home()},{Path.cwd()}")
    with LocalStack(data_dir, env={"EMO_INGEST__LOCAL_ROOTS": roots}) as stack:
        state = {
            "pid": os.getpid(),
            "data_dir": str(data_dir),
            "env": stack.env(),
            "addresses": stack.addresses(),
        }
        private_file(data_dir / STATE, json.dumps(state, indent=1))  # it holds the S3 key pair
        print(json.dumps({"data_dir": str(data_dir), "addresses": state["addresses"]}, indent=1), flush=True)
        print("stack running; Ctrl-C stops it", flush=True)

        def revived() -> bool:
            for note in stack.revive():
                print(note, flush=True)
            return True

        try:
            wait_for_signal(revived)
        finally:
            (data_dir / STATE).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
