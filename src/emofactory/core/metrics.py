"""Prometheus metrics per stage: items by outcome, seconds per item, failures by kind."""

from __future__ import annotations

import time
from contextlib import contextmanager

from prometheus_client import Counter, Histogram, start_http_server

ITEMS = Counter("emo_stage_items_total", "Items a stage finished, by outcome", ["stage", "outcome"])
SECONDS = Histogram(
    "emo_stage_seconds",
    "Seconds a stage spent per item",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
FAILURES = Counter("emo_stage_failures_total", "Failures of a stage, by kind", ["stage", "kind"])


@contextmanager
def track(stage: str):
    """Times one item of `stage`; counts it done, or failed by the exception's type."""
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        ITEMS.labels(stage, "failed").inc()
        FAILURES.labels(stage, type(exc).__name__).inc()
        raise
    else:
        ITEMS.labels(stage, "done").inc()
    finally:
        SECONDS.labels(stage).observe(time.perf_counter() - started)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    if port:
        start_http_server(port, addr=host)
