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


def test_send_chunks_take_about_twenty_seconds_at_the_vendors_rate():
    from crmd.campaigns.jobs import chunk_size

    assert chunk_size(1000) == 500
    assert chunk_size(10) == 200
    assert chunk_size(0.01) == 1


def test_a_zero_rate_cannot_stall_sending():
    assert RateLimiter(0).rate == 1.0


def test_odd_message_ids_never_raise():
    from crmd.campaigns.dispatch import parse_send_key

    log = "a" * 24
    assert parse_send_key(f"{log}:r2") == (log, 2)
    assert parse_send_key(f"{log}:r²") == (f"{log}:r²", 0)
    assert parse_send_key(f"{log}:r" + "9" * 5000)[1] == 0
    assert parse_send_key("whatever") == ("whatever", 0)
