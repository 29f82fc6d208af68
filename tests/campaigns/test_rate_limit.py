"""The rate limiter holds its average rate, whatever the batch sizes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from crmd.campaigns.vendors import RateLimiter
from crmd.config import Config


@pytest.fixture
def key(config: Config) -> str:
    """A key the test's redis fixture deletes afterwards."""
    return f"{config.redis.stream_prefix}:rate:test"


@pytest.mark.parametrize(("rate", "batch"), [(50, 10), (20, 100), (200, 7)])
async def test_average_rate_is_kept(redis: Any, key: str, rate: float, batch: int):
    limiter = RateLimiter(redis, key, rate)
    started = time.monotonic()
    sent = 0
    while sent < rate * 1.5:
        await limiter.take(batch)
        sent += batch
    elapsed = time.monotonic() - started
    # The first second's worth is free (the burst); the rest is paced.
    assert (sent - rate - batch) / rate * 0.95 <= elapsed <= (sent - rate) / rate + 0.5


async def test_processes_sharing_a_vendor_share_its_rate(redis: Any, key: str):
    """Three limiters on one key, as three crmd processes would hold: together they keep
    the one rate, and no second holds more than the rate plus one burst."""
    rate, batch = 40, 4
    limiters = [RateLimiter(redis, key, rate) for _ in range(3)]
    stamps: list[float] = []

    async def sender(limiter: RateLimiter) -> None:
        for _ in range(20):
            await limiter.take(batch)
            stamps.extend([time.monotonic()] * batch)

    started = time.monotonic()
    await asyncio.gather(*(sender(limiter) for limiter in limiters))
    elapsed = time.monotonic() - started
    sent = len(stamps)  # 240 messages: 6 s at 40/s, less the first second's burst
    assert elapsed >= (sent - rate - batch) / rate * 0.95
    assert elapsed <= (sent - rate) / rate + 0.6
    stamps.sort()
    busiest = max(sum(1 for t in stamps if s <= t < s + 1) for s in stamps)
    assert busiest <= 2 * rate + batch


def test_batches_are_about_a_second_long(redis: Any, key: str):
    assert RateLimiter(redis, key, 20).batch_size(100) == 20
    assert RateLimiter(redis, key, 1000).batch_size(100) == 100
    assert RateLimiter(redis, key, 0.5).batch_size(100) == 1


def test_send_chunks_take_about_twenty_seconds_at_the_vendors_rate():
    from crmd.campaigns.jobs import chunk_size

    assert chunk_size(1000) == 500
    assert chunk_size(10) == 200
    assert chunk_size(0.01) == 1


def test_a_zero_rate_cannot_stall_sending(redis: Any, key: str):
    assert RateLimiter(redis, key, 0).rate == 1.0


async def test_a_high_rate_is_kept_to_the_microsecond(redis: Any, key: str):
    """At 50,000 a second a message is 20 µs: the reservation must keep every one of
    them (Lua's tostring kept 14 digits, rounding the time to 100 µs: no limit at all)."""
    limiter = RateLimiter(redis, key, 50_000)
    # A minute of reservations made, within a burst of two (so no take waits): the
    # 1,000 takes end within it however busy the machine, and each one moves the next
    # free moment on by exactly 20 µs.
    limiter.burst_us = 120_000_000
    seconds, micros = await redis.time()
    ahead = seconds * 1_000_000 + micros + 60_000_000
    await redis.set(key, ahead, px=120_000)
    for _ in range(1_000):
        await limiter.take(1)
    assert int(await redis.get(key)) - ahead == 1_000 * 20
