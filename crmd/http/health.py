"""Liveness, readiness and metrics: ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from crmd.http.keys import RUNTIME
from crmd.runtime.context import Runtime
from crmd.streams import GROUP
from crmd.streams.worker import stream_stats
from crmd.telemetry.metrics import CONTENT_TYPE_LATEST

CHECK_TIMEOUT = 2.0
routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check(name: str, probe: Any) -> tuple[str, dict[str, str]]:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)
    except Exception as exc:
        return name, {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return name, {"status": "ok"}


async def readiness(runtime: Runtime) -> tuple[bool, dict[str, Any]]:
    checks = await asyncio.gather(
        _check("mongodb", runtime.mongo.admin.command("ping")),
        _check("redis", runtime.redis.ping()),
    )
    dependencies = dict(checks)
    actors = runtime.supervisor.report() if runtime.supervisor else {}
    down = [name for name, state in dependencies.items() if state["status"] != "ok"]
    down += [f"actor:{name}" for name, state in actors.items() if state["status"] != "ok"]
    return not down, {"dependencies": dependencies, "actors": actors, "down": down}


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    ready, report = await readiness(request.app[RUNTIME])
    return web.json_response(
        {"status": "ok" if ready else "unavailable", **report}, status=200 if ready else 503
    )


async def refresh_stream_metrics(runtime: Runtime) -> None:
    for stream in runtime.streams.all():
        stats = await stream_stats(runtime.redis, stream)
        runtime.metrics.stream_length.labels(stream).set(stats["length"])
        for group, numbers in stats["groups"].items():
            runtime.metrics.stream_pending.labels(stream, group).set(numbers["pending"])
            runtime.metrics.stream_lag.labels(stream, group).set(numbers["lag"])
        if GROUP not in stats["groups"]:
            runtime.metrics.stream_pending.labels(stream, GROUP).set(0)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if runtime.supervisor:
        runtime.supervisor.refresh_metrics()
    # Redis being down shows in /readyz; serve the figures we have.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(refresh_stream_metrics(runtime), CHECK_TIMEOUT)
    body = runtime.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
