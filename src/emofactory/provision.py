"""Applies the JetStream topology: the stream, the jobs bucket, and one durable consumer per stage of
the pipeline, filtered on the subjects the stage consumes (deploy/jetstream.yaml tunes each one's
ack wait, deliveries and pending limit). Idempotent, so every service may apply it at its start
(bus.topology, as the chart does), the local stack at its own, or an operator by hand:
`python -m emofactory.provision deploy/jetstream.yaml`."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import yaml
from nats.js import api
from nats.js.errors import NotFoundError

from emofactory.core.bus import connect
from emofactory.core.config import BusConfig, load_section
from emofactory.pipeline import STAGES


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
    for config in consumer_configs(topology):
        await js.add_consumer(stream.name, config)


def consumer_configs(topology: dict) -> list[api.ConsumerConfig]:
    """One per stage, named after it; the topology's `consumers` may tune each (and name no other)."""
    tuning = topology.get("consumers") or {}
    unknown = sorted(set(tuning) - {s.name for s in STAGES})
    if unknown:
        raise ValueError(f"topology: consumer {unknown[0]!r} is no stage of the pipeline")
    return [
        consumer_config(stage.name, stage.consumes, {**CONSUMER_DEFAULTS, **tuning.get(stage.name, {})})
        for stage in STAGES
    ]


# Seconds a delivery may take before it is redelivered (workers signal progress meanwhile), deliveries
# before a dead letter, messages in flight per consumer.
CONSUMER_DEFAULTS = {"ack_wait_s": 60, "max_deliver": 5, "max_ack_pending": 16}


def consumer_config(name: str, subjects, spec: dict) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=name,
        name=name,
        ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.ALL,
        filter_subjects=list(subjects),
        ack_wait=float(spec["ack_wait_s"]),
        max_deliver=int(spec["max_deliver"]),
        max_ack_pending=int(spec["max_ack_pending"]),
    )


async def _main(path: str) -> None:
    bus = load_section(BusConfig, "bus")
    nc = await connect(bus, "provision", reconnects=3)
    try:
        await provision(nc.jetstream(), load_topology(path))
    finally:
        await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("topology", nargs="?", default=str(Path(__file__).parents[2] / "deploy" / "jetstream.yaml"))
    asyncio.run(_main(parser.parse_args().topology))
