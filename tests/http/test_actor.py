"""The http actor under the supervisor: log context, and the drain on stop."""

from __future__ import annotations

import asyncio

import aiohttp
import structlog
from aiohttp import web
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from crmd.app import Crmd
from crmd.http.actor import HttpActor
from crmd.runtime.supervisor import Supervisor
from crmd.services.children import free_port

log = structlog.get_logger(__name__)


async def test_request_log_lines_name_the_actor_and_the_request(system: Crmd):
    async def hello(request: web.Request) -> web.Response:
        log.info("test.hello")
        return web.Response(text="hi")

    app = system.app
    app.router.add_get("/hello", hello)
    port = free_port()
    supervisor = Supervisor([HttpActor(app, "127.0.0.1", port, 2)], system.metrics)
    with capture_logs(processors=[merge_contextvars]) as logs:
        supervisor.start()
        assert await supervisor.wait_healthy(5)
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/hello"
            async with session.get(url, headers={"X-Request-ID": "r-1"}) as response:
                assert await response.text() == "hi"
        await supervisor.stop(5)
    [line] = [e for e in logs if e["event"] == "test.hello"]
    assert line["actor"] == "http" and line["request_id"] == "r-1"


async def test_stop_lets_a_request_in_flight_finish_and_refuses_new_ones(system: Crmd):
    entered = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        entered.set()
        await asyncio.sleep(0.5)
        return web.Response(text="done")

    app = system.app
    app.router.add_get("/slow", slow)
    port = free_port()
    supervisor = Supervisor([HttpActor(app, "127.0.0.1", port, 5)], system.metrics)
    supervisor.start()
    assert await supervisor.wait_healthy(5)
    async with aiohttp.ClientSession() as session:
        in_flight = asyncio.create_task(session.get(f"http://127.0.0.1:{port}/slow"))
        await entered.wait()
        stopping = asyncio.create_task(supervisor.stop(5))
        response = await in_flight
        assert response.status == 200 and await response.text() == "done"
        assert await stopping
    async with aiohttp.ClientSession() as session:
        try:
            await session.get(f"http://127.0.0.1:{port}/slow")
        except aiohttp.ClientConnectionError:
            refused = True
        else:
            refused = False
    assert refused
