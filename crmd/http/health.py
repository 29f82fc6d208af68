"""Liveness, readiness and metrics: ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from crmd.http import middleware
from crmd.http.describe import Media, described
from crmd.http.keys import HEALTH, METRICS
from crmd.http.responses import json_response
from crmd.runtime.supervisor import Supervisor
from crmd.telemetry.metrics import CONTENT_TYPE_LATEST, Metrics

CHECK_TIMEOUT = 2.0
routes = web.RouteTableDef()


class Health:
    """What the health routes look at: the connections, the streams, the actors."""

    def __init__(
        self,
        mongo: AsyncMongoClient[dict[str, Any]],
        redis: Redis,
        streams: Sequence[str],
        metrics: Metrics,
        measure_stream: Callable[[Redis, str, Metrics], Awaitable[None]],
    ) -> None:
        self.mongo = mongo
        self.redis = redis
        self.streams = list(streams)
        self.metrics = metrics
        self.measure_stream = measure_stream
        """Sets a stream's gauges (``crmd.streams.gauges``, from the composition root)."""
        self.supervisors: list[Supervisor] = []
        """Those running this process's actors (one of which may serve this very API)."""

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        checks = await asyncio.gather(
            _check("mongodb", self.mongo.admin.command("ping")),
            _check("redis", self.redis.ping()),
        )
        dependencies = dict(checks)
        actors = {name: state for s in self.supervisors for name, state in s.report().items()}
        down = [name for name, state in dependencies.items() if state["status"] != "ok"]
        down += [f"actor:{name}" for name, state in actors.items() if state["status"] != "ok"]
        return not down, {"dependencies": dependencies, "actors": actors, "down": down}

    async def refresh_metrics(self) -> None:
        for supervisor in self.supervisors:
            supervisor.refresh_metrics()
        for stream in self.streams:
            await self.measure_stream(self.redis, stream, self.metrics)


async def _check(name: str, probe: Awaitable[Any]) -> tuple[str, dict[str, str]]:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)
    except Exception as exc:
        return name, {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return name, {"status": "ok"}


class Alive(msgspec.Struct):
    status: Literal["ok"]


class Check(msgspec.Struct):
    status: str
    """``ok`` or ``down`` (an actor: its own word, e.g. ``restarting``)."""
    error: str | UnsetType = UNSET


class Readiness(msgspec.Struct):
    status: Literal["ok", "unavailable"]
    dependencies: dict[str, Check]
    actors: dict[str, dict[str, Any]]
    """Each actor of this process: its status, restarts, last progress..."""
    down: list[str]
    """What is not ready (``redis``, ``actor:dispatch``...)."""


@routes.get("/healthz")
@described("Liveness: the process answers", tag="operations", ok=Alive, auth="public")
async def healthz(request: web.Request) -> web.Response:
    return json_response(Alive("ok"))


@routes.get("/readyz")
@described(
    "Readiness: the database, Redis and every actor of this process",
    tag="operations",
    ok={200: Readiness, 503: Readiness},
    auth="public",
)
async def readyz(request: web.Request) -> web.Response:
    ready, report = await request.app[HEALTH].readiness()
    answer = msgspec.convert({"status": "ok" if ready else "unavailable", **report}, Readiness)
    return json_response(answer, status=200 if ready else 503)


@routes.get("/metrics")
@described(
    "Prometheus metrics",
    tag="operations",
    ok=Media("text/plain", {"type": "string"}, "Prometheus text format 0.0.4"),
    auth="public",
)
async def metrics(request: web.Request) -> web.Response:
    health = request.app[HEALTH]
    # Redis being down shows in /readyz; serve the figures we have.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(health.refresh_metrics(), CHECK_TIMEOUT)
    body = health.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def health_app(metrics: Metrics, health: Health) -> web.Application:
    """Only these routes: what a process without the API (a worker) still serves, so
    that it can be watched and restarted like any other."""
    app = web.Application(
        middlewares=[
            middleware.request_context,
            middleware.metrics,
            middleware.errors,
            middleware.declared_answers,
        ]
    )
    app[METRICS] = metrics
    app[HEALTH] = health
    app.add_routes(routes)
    return app
