"""A stream's figures on ``/metrics``: its length, and per consumer group what is
pending and how far the group lags behind."""

from __future__ import annotations

from redis.asyncio import Redis

from crmd.streams import GROUP
from crmd.streams.worker import stream_stats
from crmd.telemetry.metrics import Metrics


async def measure_stream(redis: Redis, stream: str, metrics: Metrics) -> None:
    """Set the stream's gauges; crmd's group shows nothing pending before it exists."""
    stats = await stream_stats(redis, stream)
    metrics.stream_length.labels(stream).set(stats["length"])
    for group, numbers in stats["groups"].items():
        metrics.stream_pending.labels(stream, group).set(numbers["pending"])
        metrics.stream_lag.labels(stream, group).set(numbers["lag"])
    if GROUP not in stats["groups"]:
        metrics.stream_pending.labels(stream, GROUP).set(0)
