"""JetStream plumbing: publishing with de-duplication ids, and the pull loop every stage worker runs.

A message is acked only after its handler returned, that is after the outputs are stored and
the next event is published. A transient failure is nak'ed with a growing delay; a permanent one,
a malformed payload, or the last allowed delivery is dead-lettered on `emo.dlq.<stage>`, recorded
on the job, and terminated. A worker that dies mid-message gets it redelivered after ack_wait; if
that happens until max_deliver, the server's advisory is turned into a dead letter too."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping

import nats
from google.protobuf.message import Message
from nats.aio.msg import Msg

from emofactory.core import metrics
from emofactory.core.config import BusConfig
from emofactory.core.errors import PermanentError
from emofactory.core.events import chunk_of, context_of, dead_letter_subject, decode, video_id_of
from emofactory.core.jobs import JobStore
from emofactory.v1 import common_pb2, events_pb2

log = logging.getLogger(__name__)

Handler = Callable[[str, Message], Awaitable[None]]


class _QuietTlsEof(logging.Filter):
    """nats-py keeps its side open at EOF, which asyncio's TLS transport cannot do and says so at
    every reconnect or close: noise, not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "eof_received() has no effect when using ssl" not in record.getMessage()


logging.getLogger("asyncio").addFilter(_QuietTlsEof())


async def connect(config: BusConfig, name: str, reconnects: int = -1):
    """A NATS connection with the configured credentials; `reconnects` -1: forever once connected (a
    worker). A first connection is tried once, without reconnects (nats-py would otherwise retry it
    forever, quietly for the caller, a certificate it cannot verify included): a server that is not
    there yet, or not trusted, raises, and the caller decides to wait."""
    credentials = {"user": config.user, "password": config.password} if config.user else {}
    options = {"connect_timeout": 5, "reconnect_time_wait": 1, "error_cb": _log_error, **credentials}
    if config.tls_ca or config.tls_cert:
        options["tls"] = tls_context(config)
    probe = await nats.connect(config.url, name=name, allow_reconnect=False, **options)
    await probe.close()
    return await nats.connect(config.url, name=name, max_reconnect_attempts=reconnects, **options)


def tls_context(config: BusConfig) -> ssl.SSLContext:
    """Verifies the server against `tls_ca` (the system's CAs where empty); presents the client's
    certificate where one is configured."""
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ValueError("bus.tls_cert and bus.tls_key go together: set both or neither")
    context = ssl.create_default_context(cafile=config.tls_ca or None)
    if config.tls_cert:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


async def _log_error(exc: Exception) -> None:
    log.warning("nats: %s", exc)


async def publish(js, subject: str, event: Message, msg_id: str) -> None:
    data = event.SerializeToString()
    try:
        await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})
    except nats.errors.MaxPayloadError as exc:  # the same event is as large on every redelivery
        raise PermanentError(f"the {subject} event is {len(data)} bytes, more than the bus takes") from exc


def _ids(event: Message | None) -> tuple[str, str]:
    if event is None:
        return "", ""
    return context_of(event).job_id, video_id_of(event)


class StageWorker:
    def __init__(
        self, stage: str, nc, jobs: JobStore, handle: Handler, config: BusConfig, payloads: Mapping[str, type[Message]]
    ):
        self.stage, self.nc, self.js, self.jobs, self.payloads = stage, nc, nc.jetstream(), jobs, payloads
        self.handle, self.config = handle, config
        self.max_deliver = 1

    async def run(self, stop: asyncio.Event) -> None:
        sub = await self.js.pull_subscribe_bind(durable=self.stage, stream=self.config.stream)
        self.max_deliver = (await sub.consumer_info()).config.max_deliver or 1
        advisories = await self.nc.subscribe(
            f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.config.stream}.{self.stage}", cb=self._on_max_deliveries
        )
        log.info("worker started", extra={"stage": self.stage, "max_deliver": self.max_deliver})
        try:
            while not stop.is_set():
                try:
                    batch = await sub.fetch(self.config.fetch_batch, timeout=self.config.fetch_timeout_s)
                except TimeoutError:  # nats' own TimeoutError subclasses it; both mean "nothing yet"
                    continue
                except nats.errors.Error as exc:  # a reconnect in progress: wait, never die
                    log.warning("fetch failed, retrying", extra={"stage": self.stage, "error": repr(exc)})
                    await asyncio.sleep(1.0)
                    continue
                await self.settle(batch, stop)
        finally:
            await advisories.unsubscribe()
            await sub.unsubscribe()

    async def settle(self, batch: list[Msg], stop: asyncio.Event) -> None:
        """A fetched batch, one message after the other. Each message says "still working" every
        heartbeat_s from its fetch until it is settled, so those waiting behind a long one are not
        redelivered meanwhile; at shutdown the unstarted ones go back at once, not after ack_wait."""
        beats = [asyncio.create_task(self._heartbeat(m)) for m in batch]
        started = 0  # messages handed to process(), which settles each (ack, nak, dead letter)
        try:
            for msg, beat in zip(batch, beats):
                if stop.is_set():
                    break
                started += 1
                await self.process(msg)
                beat.cancel()
        finally:
            for beat in beats:
                beat.cancel()
            unstarted = batch[started:]
            await asyncio.shield(asyncio.gather(*(m.nak() for m in unstarted), return_exceptions=True))

    async def process(self, msg: Msg) -> None:
        attempt = msg.metadata.num_delivered
        event = None
        try:
            event = decode(msg.subject, msg.data, self.payloads)
            with metrics.track(self.stage):
                await self.handle(msg.subject, event)
        except asyncio.CancelledError:  # abandoned at shutdown: another worker takes it now, not after ack_wait
            await msg.nak()
            raise
        except PermanentError as exc:
            await self._give_up(msg, event, str(exc), attempt)
        except Exception as exc:  # anything else may pass: retry, up to max_deliver
            if attempt >= self.max_deliver:
                await self._give_up(msg, event, f"gave up after {attempt} deliveries: {exc}", attempt)
            else:
                delay = self.config.nak_delays_s[min(attempt, len(self.config.nak_delays_s)) - 1]
                log.warning(
                    "transient failure, will retry",
                    extra={
                        "stage": self.stage,
                        "subject": msg.subject,
                        "attempt": attempt,
                        "delay_s": delay,
                        "error": f"{type(exc).__name__}: {exc}",
                    },
                )
                await msg.nak(delay=delay)
        else:
            await msg.ack()

    async def _heartbeat(self, msg: Msg) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            await msg.in_progress()

    async def _give_up(self, msg: Msg, event: Message | None, reason: str, attempt: int) -> None:
        await self.dead_letter(msg.subject, msg.data, event, reason, attempt, msg.metadata.sequence.stream)
        await msg.term()

    async def dead_letter(
        self, subject: str, data: bytes, event: Message | None, reason: str, attempt: int, seq: int
    ) -> None:
        job_id, video_id = _ids(event)
        log.error(
            "dead-lettered",
            extra={
                "stage": self.stage,
                "subject": subject,
                "job_id": job_id,
                "video_id": video_id,
                "attempt": attempt,
                "reason": reason,
            },
        )
        letter = events_pb2.DeadLetter(
            stage=self.stage,
            subject=subject,
            payload=data,
            reason=reason,
            deliveries=attempt,
            job_id=job_id,
            video_id=video_id,
        )
        # One dead letter per stream message, however many replicas saw it fail.
        await publish(self.js, dead_letter_subject(self.stage), letter, f"dlq.{self.stage}.{seq}")
        if job_id and video_id:
            chunk, chunks = chunk_of(event)
            failed = common_pb2.StageStatus(
                stage=self.stage, state=common_pb2.STAGE_STATE_FAILED, reason=reason, attempts=attempt, chunks=chunks
            )
            await self.jobs.record(job_id, video_id, failed, chunk)
        elif job_id:
            await self.jobs.fail_resolution(job_id, f"{self.stage}: {reason}")

    async def _on_max_deliveries(self, advisory: Msg) -> None:
        """The server gave up on a message whose worker never answered (it crashed or hung)."""
        try:
            seq = int(json.loads(advisory.data)["stream_seq"])
            stored = await self.js.get_msg(self.config.stream, seq)
            try:
                event = decode(stored.subject, stored.data, self.payloads)
            except PermanentError:
                event = None
            await self.dead_letter(
                stored.subject,
                stored.data,
                event,
                f"no worker finished it in {self.max_deliver} deliveries (crashed or timed out)",
                self.max_deliver,
                seq,
            )
        except Exception:
            log.exception("could not dead-letter after max deliveries", extra={"stage": self.stage})
