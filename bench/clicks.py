"""The clicks figures' parts: people clicking the links of the campaign sent, and the
limits they are set against.

People click: ``clients`` at once, each sending ``GET /c/<token>`` (not following the
redirect) as soon as its last one is answered, each answer checked to be a 302 to the
campaign's own link. The redirect's limit is a bare aiohttp app in a process of its own
doing the least a redirect must (one XADD of the token, a 302), clicked the same way;
the tracking actor's is the raw database doing the same updates (``raw_click_updates``
in ``bench.run``). Whether the clicks are applied is read off the tracking stream: every
entry read by crmd's group and acknowledged (an entry is acked once its batch is
applied).

    python -m bench.clicks PORT REDIS_URL STREAM   # the bare redirect app
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from time import perf_counter, time
from typing import Any

import aiohttp
import msgspec
from aiohttp import web
from redis.asyncio import Redis

from bench.server import stop, wait_ready
from crmd.receipts.hits import FIELD, Hit, encode
from crmd.services.children import free_port
from crmd.streams import GROUP

PERSON = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
BARE_TARGET = "https://shop.example/bare"


class Click(msgspec.Struct, frozen=True):
    path: str
    """``/c/<token>``, as the message carries it after crmd's public URL."""
    goes_to: str
    """The campaign's link it must redirect to ("" for the bare app: not checked)."""


class Clicked(msgspec.Struct):
    seconds: float
    """From the first request sent to the last answer."""
    latencies: list[float]
    statuses: dict[str, int]
    wrong: int
    """Answers that were not a 302 to the click's own link."""

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds


async def click_all(
    http: aiohttp.ClientSession, base: str, clicks: list[Click], clients: int
) -> Clicked:
    """Every click sent once, by ``clients`` people at once with no pause between."""
    todo = iter(clicks)
    latencies: list[float] = []
    statuses: dict[str, int] = defaultdict(int)
    wrong = 0

    async def person() -> None:
        nonlocal wrong
        for click in todo:
            sent = perf_counter()
            async with http.get(
                base + click.path, allow_redirects=False, headers={"User-Agent": PERSON}
            ) as answer:
                await answer.read()
            latencies.append(perf_counter() - sent)
            statuses[str(answer.status)] += 1
            location = answer.headers.get("Location")
            if answer.status != 302 or (click.goes_to and location != click.goes_to):
                wrong += 1

    started = perf_counter()
    await asyncio.gather(*(person() for _ in range(clients)))
    return Clicked(perf_counter() - started, latencies, dict(statuses), wrong)


async def queue_clicks(redis: Redis, stream: str, clicks: list[tuple[str, int]]) -> None:
    """The clicks on (message, link) queued straight onto crmd's tracking stream, as the
    redirect queues them, in one pipeline: the tracking actor's work without the
    requests'."""
    async with redis.pipeline(transaction=False) as pipe:
        for log_id, link in clicks:
            pipe.xadd(stream, {FIELD: encode(Hit("c", log_id, link, time(), PERSON))})
        await pipe.execute()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def caught_up(redis: Redis, stream: str) -> bool:
    """Every entry of the stream read by crmd's group and acknowledged."""
    last = _text((await redis.xinfo_stream(stream))["last-generated-id"])
    for group in await redis.xinfo_groups(stream):
        if _text(group["name"]) == GROUP:
            return _text(group["last-delivered-id"]) == last and int(group["pending"]) == 0
    return False


def bare_app(redis_url: str, stream: str) -> web.Application:
    """A redirect with nothing but the XADD it must do: no token check, no middleware."""
    redis_key = web.AppKey("redis", Redis)

    async def redirect(request: web.Request) -> web.Response:
        await request.app[redis_key].xadd(stream, {FIELD: request.match_info["token"].encode()})
        return web.Response(status=302, headers={"Location": BARE_TARGET})

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def redis_client(app: web.Application) -> Any:
        app[redis_key] = Redis.from_url(redis_url)
        yield
        await app[redis_key].delete(stream)
        await app[redis_key].aclose()

    app = web.Application()
    app.router.add_get("/c/{token}", redirect)
    app.router.add_get("/readyz", ready)
    app.cleanup_ctx.append(redis_client)
    return app


@asynccontextmanager
async def bare_redirect(work: Path, redis_url: str, stream: str) -> AsyncIterator[tuple[int, str]]:
    """The bare redirect app in a process of its own (as crmd is); its process id and
    base URL."""
    port = free_port()
    log = (work / "bare.log").open("wb")
    process = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "bench.clicks", str(port), redis_url, stream],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(process, base, work / "bare.log")
        yield process.pid, base
    finally:
        await asyncio.to_thread(stop, process)
        log.close()


if __name__ == "__main__":
    web.run_app(
        bare_app(sys.argv[2], sys.argv[3]),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=None,
    )
