"""Applies the declarative JetStream topology (stream, jobs bucket, one consumer per service).
Idempotent: run it at every start of the stack or as a Helm hook."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import nats
import yaml
from nats.js import api
from nats.js.errors import NotFoundError

from services.common.config import BusConfig, load_section


def load_topology(path: Path | str) -> dict:
    return yaml.safe_load(Path(path).read_text())


async def provision(js, topology: dict) -> None:
    spec = topology["stream"]
    stream = api.StreamConfig(
        name=spec["name"],
        subjects=list(spec["subjects"]),
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        max_age=float(spec["max_age_s"]),
        duplicate_window=float(spec["duplicate_window_s"]),
        num_replicas=int(spec.get("replicas", 1)),
    )
    try:
        await js.stream_info(stream.name)
        await js.update_stream(stream)
    except NotFoundError:
        await js.add_stream(stream)
    bucket = topology["jobs_bucket"]
    await js.create_key_value(api.KeyValueConfig(bucket=bucket["name"], history=int(bucket.get("history", 1))))
    for name, spec in topology["consumers"].items():
        await js.add_consumer(stream.name, consumer_config(name, spec))


def consumer_config(name: str, spec: dict) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=name,
        name=name,
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        filter_subjects=list(spec["filter_subjects"]),
        ack_wait=float(spec["ack_wait_s"]),
        max_deliver=int(spec["max_deliver"]),
        max_ack_pending=int(spec["max_ack_pending"]),
    )


async def _main(path: str) -> None:
    bus = load_section(BusConfig, "bus")
    nc = await nats.connect(bus.url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        await provision(nc.jetstream(), load_topology(path))
    finally:
        await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("topology", nargs="?", default=str(Path(__file__).parents[2] / "deploy" / "jetstream.yaml"))
    asyncio.run(_main(parser.parse_args().topology))
