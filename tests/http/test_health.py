"""/healthz, /readyz, /metrics and the error shape, against the real app."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from redis.asyncio import Redis
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from crmd.app import Crmd
from crmd.auth.requests import public
from crmd.runtime.actor import Actor, Health
from crmd.runtime.supervisor import Supervisor


class CrashesOnce(Actor):
    def __init__(self) -> None:
        super().__init__("flaky")
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        if self.runs == 1:
            raise ConnectionError("vendor went away")
        self.health = Health.OK
        await self.stopping.wait()


class NeverReady(Actor):
    async def run(self) -> None:
        await self.stopping.wait()


async def test_healthz_answers_while_the_process_runs(client: Any):
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_reports_each_dependency_and_actor(client: Any, system: Crmd):
    response = await client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["dependencies"] == {"mongodb": {"status": "ok"}, "redis": {"status": "ok"}}
    assert body["down"] == []


async def test_readyz_is_503_naming_an_actor_that_is_not_up(client: Any, system: Crmd):
    supervisor = Supervisor([NeverReady("ingest")], system.metrics)
    system.health.supervisors.append(supervisor)
    supervisor.start()
    try:
        response = await client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["down"] == ["actor:ingest"]
        assert body["actors"]["ingest"]["status"] == "starting"
    finally:
        await supervisor.stop(2)


async def test_readyz_is_503_naming_redis_when_it_is_unreachable(aiohttp_client: Any, system: Crmd):
    system.health.redis = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    client = await aiohttp_client(system.app)
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["down"] == ["redis"]
    assert body["dependencies"]["redis"]["status"] == "down"
    await system.health.redis.aclose()


async def test_crash_and_restart_show_in_readyz_the_log_and_metrics(client: Any, system: Crmd):
    flaky = CrashesOnce()
    supervisor = Supervisor([flaky], system.metrics, initial_delay=0.05)
    system.health.supervisors.append(supervisor)
    with capture_logs() as logs:
        supervisor.start()
        assert await supervisor.wait_healthy(5)
    try:
        body = await (await client.get("/readyz")).json()
        assert body["actors"]["flaky"] == {"status": "ok", "restarts": 1}
        assert any(
            e["event"] == "actor.crashed" and "vendor went away" in e["reason"] for e in logs
        )
        text = await (await client.get("/metrics")).text()
        assert 'crmd_actor_restarts_total{actor="flaky"} 1.0' in text
        assert 'crmd_actor_up{actor="flaky"} 1.0' in text
    finally:
        await supervisor.stop(2)


async def test_metrics_count_requests_by_route_and_status(client: Any, system: Crmd):
    await client.get("/healthz")
    await client.get("/healthz")
    await client.get("/no/such/route")
    text = await (await client.get("/metrics")).text()
    assert 'crmd_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text
    assert 'route="unmatched",status="404"' in text
    assert 'crmd_http_request_duration_seconds_count{method="GET",route="/healthz"} 2.0' in text


async def test_metrics_show_stream_length_pending_and_lag(client: Any, system: Crmd):
    stream = system.streams.ingest
    # crmd made the group at start.
    for n in range(5):
        await system.redis.xadd(stream, {"n": str(n)})
    await system.redis.xreadgroup("crmd", "c1", {stream: ">"}, count=2)
    text = await (await client.get("/metrics")).text()
    assert f'crmd_stream_length{{stream="{stream}"}} 5.0' in text
    assert f'crmd_stream_pending{{group="crmd",stream="{stream}"}} 2.0' in text
    assert f'crmd_stream_lag{{group="crmd",stream="{stream}"}} 3.0' in text


async def test_errors_use_the_one_json_shape_and_carry_a_request_id(client: Any):
    response = await client.get("/nothing-here")
    assert response.status == 404
    assert await response.json() == {
        "error": {"code": "not_found", "message": "Not Found", "details": None}
    }
    assert len(response.headers["X-Request-ID"]) == 32
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123"
    refused = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert refused.headers["X-Request-ID"] != "bad id\twith spaces"


async def test_unexpected_errors_are_500_and_logged_with_the_request_id(
    aiohttp_client: Any, system: Crmd
):
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("unexpected")

    system.app.router.add_get("/boom", public(boom))  # (no permission rule: open)
    client = await aiohttp_client(system.app)
    with capture_logs(processors=[merge_contextvars]) as logs:
        response = await client.get("/boom", headers={"X-Request-ID": "req-42"})
    assert response.status == 500
    assert (await response.json())["error"]["code"] == "internal_error"
    [line] = [e for e in logs if e["event"] == "http.unhandled"]
    assert line["request_id"] == "req-42" and line["path"] == "/boom"
