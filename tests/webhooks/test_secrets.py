"""A webhook's secret is answered once, at creation, and appears in no log line (crmd's
logging set up as ``crmd serve`` does, at its most verbose), in no list, and in no
other answer."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from crmd.app import Crmd
from crmd.config import LoggingConfig
from crmd.store.tenant import TenantStore
from crmd.telemetry.logs import configure_logging
from crmd.webhooks.emit import emit
from tests.webhooks.conftest import Endpoint, deliver, subscribe, user_id


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything crmd logs, as JSON lines, at level debug."""
    root = logging.getLogger()
    kept = (root.handlers[:], root.level, structlog.get_config())
    levels = {n: logging.getLogger(n).level for n in ("pymongo", "asyncio", "aiohttp.access")}
    written = io.StringIO()
    configure_logging(LoggingConfig(level="debug", format="json"), written)
    yield written
    root.handlers[:], _, config = kept
    root.setLevel(kept[1])
    structlog.configure(**config)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_the_secret_is_in_no_log_and_no_later_answer(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint, log_lines: io.StringIO
):
    answers: list[str] = []
    hook = await subscribe(client, auth, endpoint.at("/s"), ["import.done"])
    secret = hook["secret"]
    path = f"/api/v1/webhooks/{hook['id']}"
    for method, suffix in (("GET", ""), ("POST", "/test"), ("GET", "/deliveries"), ("PATCH", "")):
        body = {"description": "changed"} if method == "PATCH" else None
        answer = await client.request(method, path + suffix, headers=auth, json=body)
        assert answer.status == 200
        answers.append(await answer.text())
    answers.append(await (await client.get("/api/v1/webhooks", headers=auth)).text())
    store = TenantStore(system.db, await user_id(client, auth))
    prefix = system.config.redis.stream_prefix
    await emit(store, system.redis, "import.done", {"n": 1}, prefix=prefix)
    endpoint.answers.append((500, "no"))
    assert await deliver(system) == 1
    logged = log_lines.getvalue()
    assert '"event": "webhook.created"' in logged  # the lines were caught: the check counts
    assert '"event": "webhook.attempted"' in logged
    assert secret.removeprefix("whsec_") not in logged
    for text in answers:
        assert secret.removeprefix("whsec_") not in text and "secret" not in text
