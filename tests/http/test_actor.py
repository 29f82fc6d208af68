"""The http actor under the supervisor: log context, and the drain on stop."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
import structlog
from aiohttp import web
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from crmd.app import Crmd
from crmd.auth.requests import public
from crmd.http.actor import HttpActor, problem_of
from crmd.runtime.supervisor import Supervisor
from crmd.services.children import free_port

log = structlog.get_logger(__name__)


async def test_request_log_lines_name_the_actor_and_the_request(system: Crmd):
    async def hello(request: web.Request) -> web.Response:
        log.info("test.hello")
        return web.Response(text="hi")

    app = system.app
    app.router.add_get("/hello", public(hello))  # (no permission rule: open)
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
    app.router.add_get("/slow", public(slow))  # (no permission rule: open)
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


UNREADABLE = {
    "a NUL in a header's value": b"X-Api-Key: s3cret\x00tail\r\n",
    "a NUL in a header's name": b"X-Api\x00Key: s3cret\r\n",
    "a control character in a header's value": b"Authorization: Bearer s3cret\x01\r\n",
}


@pytest.mark.parametrize(
    "request_bytes",
    [
        *(
            pytest.param(b"GET /readyz HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n", id=case)
            for case, header in UNREADABLE.items()
        ),
        pytest.param(b"GET /readyz?token=s3cret\x00 HTTP/1.1\r\nHost: x\r\n\r\n", id="in the path"),
    ],
)
async def test_a_request_the_server_cannot_read_is_400_and_one_info_line(
    system: Crmd, caplog: pytest.LogCaptureFixture, request_bytes: bytes
):
    port = free_port()
    supervisor = Supervisor([HttpActor(system.app, "127.0.0.1", port, 2)], system.metrics)
    supervisor.start()
    assert await supervisor.wait_healthy(5)
    try:
        with capture_logs() as logs, caplog.at_level(logging.DEBUG):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request_bytes)
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 5)
            await asyncio.wait_for(reader.read(), 5)  # the server closes the connection
            writer.close()
            await writer.wait_closed()
    finally:
        await supervisor.stop(5)
    assert status_line.startswith(b"HTTP/1.") and b" 400 " in status_line
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [e for e in logs if e["log_level"] in ("warning", "error", "critical")]
    [line] = [e for e in logs if e["event"] == "http.bad_request"]
    assert line["log_level"] == "info" and "exc_info" not in line
    logged = repr(logs) + "".join(r.getMessage() + repr(r.exc_info) for r in caplog.records)
    assert "s3cret" not in logged


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ("Invalid header value char:\n\n  b'X-Key: s3cret\\x00'\n  ^", "Invalid header value char"),
        ("Invalid HTTP header: 'Bearer s3cret'", "Invalid HTTP header"),
        ("Got more than 8 bytes when reading: b'X: s3cret'.", "Got more than 8 bytes when reading"),
        ("Bad status line 'GET /?token=s3cret HTTP/1.1'", "Bad status line …"),
        ("Bad status line \"it's s3cret", "Bad status line …"),
        ("Duplicate 'Host' header found.", "Duplicate … header found."),
    ],
)  # fmt: skip
def test_the_logged_problem_quotes_none_of_the_requests_bytes(message: str, problem: str):
    assert problem_of(message) == problem
