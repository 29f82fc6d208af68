"""The rate limiter holds its average rate, whatever the batch sizes."""

from __future__ import annotations

import time

import pytest

from crmd.campaigns.vendors import RateLimiter


@pytest.mark.parametrize(("rate", "batch"), [(50, 10), (20, 100), (200, 7)])
async def test_average_rate_is_kept(rate: float, batch: int):
    limiter = RateLimiter(rate)
    started = time.monotonic()
    sent = 0
    while sent < rate * 1.5:
        await limiter.take(batch)
        sent += batch
    elapsed = time.monotonic() - started
    # The first second's worth is free (a full bucket); the rest is paced.
    assert (sent - rate) / rate * 0.95 <= elapsed <= (sent - rate) / rate + 0.5


def test_batches_are_about_a_second_long():
    assert RateLimiter(20).batch_size(100) == 20
    assert RateLimiter(1000).batch_size(100) == 100
    assert RateLimiter(0.5).batch_size(100) == 1
