"""What every service process is: a gRPC server (health, reflection, the stage's servicer) and,
beside it, the stage's JetStream worker; Prometheus metrics; graceful stop on SIGTERM/SIGINT.

Resources close in reverse order through an AsyncExitStack: health goes NOT_SERVING, the worker
finishes its message within server.grace_s (else hands it back to NATS and the process exits without
waiting for it) and hands back the rest, the gRPC server drains, NATS drains."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from emofactory.core import bus
from emofactory.core.channels import ReadyGate, TokenCheck, server_credentials
from emofactory.core.config import BusConfig, ServerConfig, StoreConfig, load_section
from emofactory.core.errors import InvalidRequest, NotFound, PermanentError, SettingError, TransientError
from emofactory.core.jobs import JobStore
from emofactory.core.logs import setup_logging
from emofactory.core.metrics import serve_metrics
from emofactory.core.stage import Stage
from emofactory.core.store import ObjectStore

log = logging.getLogger(__name__)
ABANDONED = 1  # serve's result where the worker abandoned a message at shutdown


@dataclass
class Runtime:
    """What a servicer and a worker handler get: connections and settings, opened once per process.
    The NATS connection and the job store arrive once the bus and its topology are there (`ready`);
    until then the gRPC methods answer UNAVAILABLE and health says NOT_SERVING."""

    name: str
    server: ServerConfig
    bus: BusConfig
    store: ObjectStore
    work_dir: str
    # The pipeline's stages in order (ingest checks a job's options against each stage's).
    pipeline: Sequence[type[Stage]] = ()
    nc: object = None
    js: object = None
    jobs: JobStore | None = None


# Attaches a service's gRPC servicers to the server; returns their full names, its event handler (or
# None: gRPC only), the payload type of each subject it consumes, and what to do before serving
# (loading its models: a SettingError there keeps it NOT_SERVING).
Attach = Callable[
    [grpc.aio.Server, Runtime], tuple[list[str], bus.Handler | None, Mapping[str, type], Callable[[], None]]
]


@contextlib.asynccontextmanager
async def abort_on_error(context):
    """Our exceptions as gRPC status codes, with the exception's message."""
    try:
        yield
    except InvalidRequest as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except NotFound as exc:
        await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
    except PermanentError as exc:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except TransientError as exc:
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))


def grpc_errors(method):
    """A servicer method with abort_on_error around it."""

    @functools.wraps(method)
    async def wrapper(self, request, context):
        async with abort_on_error(context):
            return await method(self, request, context)

    return wrapper


# Applies the JetStream topology where the service is asked to (bus.topology): (js, path) -> None.
Provision = Callable[[object, str], Awaitable[None]]


async def until_ready(rt: Runtime, stages: Sequence[str], provision: Provision, stop: asyncio.Event) -> bool:
    """Waits, retrying with growing pauses, for NATS, the bucket, the topology (applied here when
    bus.topology names a file) and the stage's consumer; False if the process was stopped first. A
    service started before its servers or their provisioning thus waits instead of exiting."""
    pause = 1.0
    while not stop.is_set():
        try:
            if rt.nc is None:
                rt.nc = await bus.connect(rt.bus, rt.name)
                rt.js = rt.nc.jetstream()
            await asyncio.to_thread(rt.store.ensure_bucket)
            if rt.bus.topology:
                await provision(rt.js, rt.bus.topology)
            rt.jobs = await JobStore.open(rt.js, rt.bus.jobs_bucket, stages)
            if rt.name in stages:
                await rt.js.consumer_info(rt.bus.stream, rt.name)
            return True
        except Exception as exc:  # noqa: BLE001 - whatever is missing, it is waited for, and said
            log.warning("waiting for NATS, the bucket and the topology", extra={"error": repr(exc)[:300]})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            pause = min(2 * pause, 15.0)
    return False


async def serve(name: str, attach: Attach, pipeline: Sequence[type[Stage]], provision: Provision) -> int:
    """`pipeline`: its stages, in order (job status counts a video done through them)."""
    stages = [s.name for s in pipeline]
    server_cfg = load_section(ServerConfig, "server")
    bus_cfg = load_section(BusConfig, "bus")
    store = ObjectStore(load_section(StoreConfig, "store"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with AsyncExitStack() as stack:
        # ignore_cleanup_errors: the thread of a message abandoned at shutdown may still write there
        work_dir = server_cfg.work_dir or stack.enter_context(
            tempfile.TemporaryDirectory(prefix=f"emo-{name}-", ignore_cleanup_errors=True)
        )
        rt = Runtime(name, server_cfg, bus_cfg, store, work_dir, pipeline)
        ready = asyncio.Event()
        gates = [ReadyGate(ready), *([TokenCheck(server_cfg.auth_token)] if server_cfg.auth_token else [])]
        server = grpc.aio.server(interceptors=gates)
        health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        names, handler, payloads, prepare = attach(server, rt)
        reflection.enable_server_reflection([*names, reflection.SERVICE_NAME, "grpc.health.v1.Health"], server)
        where, credentials = f"{server_cfg.host}:{server_cfg.grpc_port}", server_credentials(server_cfg)
        port = server.add_secure_port(where, credentials) if credentials else server.add_insecure_port(where)
        for service in ("", *names):
            await health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        await server.start()
        stack.push_async_callback(server.stop, server_cfg.grace_s)
        serve_metrics(server_cfg.metrics_port, server_cfg.host)
        if not await prepared(prepare, gates[0], stop):
            return 0
        connected = await until_ready(rt, stages, provision, stop)
        if rt.nc is not None:
            stack.push_async_callback(rt.nc.drain)
        if not connected:
            return 0

        worker_task = None
        if handler and server_cfg.worker:
            worker = bus.StageWorker(name, rt.nc, rt.jobs, handler, bus_cfg, payloads)
            worker_task = asyncio.create_task(worker.run(stop))
            worker_task.add_done_callback(lambda _t: stop.set())  # a dead worker stops the process
        ready.set()
        for service in ("", *names):
            await health.set(service, health_pb2.HealthCheckResponse.SERVING)
        secured = {"tls": credentials is not None, "mutual_tls": bool(server_cfg.tls_client_ca)}
        log.info("serving", extra={"port": port, "services": names, "worker": worker_task is not None, **secured})

        await stop.wait()
        log.info("stopping")
        await health.enter_graceful_shutdown()
        if worker_task and not await finished_within(worker_task, server_cfg.grace_s):
            return ABANDONED
    return 0


async def prepared(prepare: Callable[[], None], gate: ReadyGate, stop: asyncio.Event) -> bool:
    """Runs `prepare` (loading the models); on a wrong setting the service stays up NOT_SERVING, says
    why in its log and in every RPC's answer, and waits to be stopped: False."""
    try:
        await asyncio.to_thread(prepare)
        return True
    except SettingError as exc:
        log.error("not serving: a setting is wrong", extra={"setting": exc.setting, "error": str(exc)})
        gate.refuse(str(exc))
        await stop.wait()
        return False


async def finished_within(worker: asyncio.Task, grace_s: float) -> bool:
    """The worker ends its current message within the grace period, or abandons it (handed back to
    NATS at once); False where it abandoned one. A worker crash is re-raised: the process exits
    non-zero."""
    try:
        await asyncio.wait_for(asyncio.shield(worker), grace_s)
        return True
    except TimeoutError:
        log.warning("the current message outlasted the grace period: handed back", extra={"grace_s": grace_s})
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        return False


def main(name: str, attach: Attach, pipeline: Sequence[type[Stage]], provision: Provision) -> None:
    setup_logging(name)
    loop = asyncio.new_event_loop()
    if loop.run_until_complete(serve(name, attach, pipeline, provision)) == ABANDONED:
        # The abandoned message's thread may still be decoding: exit without waiting for it (asyncio
        # and Python would both join it); the message is already back in NATS.
        logging.shutdown()
        os._exit(0)
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
