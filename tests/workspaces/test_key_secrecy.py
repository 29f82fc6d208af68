"""A key's text is in its creation's answer and nowhere else: not in a log line (crmd's
logging set up as ``crmd serve`` sets it, at its most verbose, with the access log of
the test server on), not in the audit log, not in any later answer."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from crmd.app import Crmd
from crmd.config import LoggingConfig
from crmd.telemetry.logs import configure_logging
from tests.workspaces.key_kit import bearer, make_key, sign_in


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """Every line crmd and aiohttp log, as JSON, at level debug."""
    root = logging.getLogger()
    kept = (root.handlers[:], root.level, structlog.get_config())
    names = ("pymongo", "asyncio", "aiohttp.access")
    levels = {name: logging.getLogger(name).level for name in names}
    written = io.StringIO()
    configure_logging(LoggingConfig(level="debug", format="json"), written)
    yield written
    root.handlers[:] = kept[0]
    root.setLevel(kept[1])
    structlog.configure(**kept[2])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_a_key_is_in_no_log_line_and_no_later_answer(
    client: Any, system: Crmd, logged: io.StringIO
):
    owner, workspace = await sign_in(client, "owner@example.com")
    made = await make_key(client, owner, "read", name="logged")
    key, secret_part = made["key"], made["key"][12:]
    answers = []
    for method, path in (
        ("GET", "/api/v1/customers"),
        ("GET", "/api/v1/customers?limit=1"),
        ("POST", "/api/v1/campaigns"),  # refused: needs send
        ("GET", "/api/v1/keys"),  # refused: needs manage
    ):
        answer = await client.request(method, path, headers=bearer(key), json={})
        answers.append(await answer.text())
    answers.append(await (await client.get("/api/v1/keys", headers=owner)).text())
    gone = await client.delete(f"/api/v1/keys/{made['id']}", headers=owner)
    assert gone.status == 204
    refused = await client.get("/api/v1/customers", headers=bearer(key))
    assert refused.status == 401
    answers.append(await refused.text())
    lines = logged.getvalue()
    # The lines were caught, the request lines of the access log among them: the
    # checks below count.
    assert '"event": "key.created"' in lines and '"event": "key.revoked"' in lines
    assert "GET /api/v1/customers?limit=1 HTTP/1.1" in lines
    assert secret_part not in lines
    assert "Bearer" not in lines and "Authorization" not in lines
    for text in answers:
        assert secret_part not in text
    audit = [e async for e in system.db.audit.find({"userId": workspace})]
    assert {e["action"] for e in audit} >= {"key.created", "key.revoked"}
    assert secret_part not in repr(audit)
