"""Values a probe found still reaching a 500: each is a 4xx naming what is wrong."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from crmd.app import Crmd
from crmd.plugins.context import plugin_secret
from crmd.plugins.signature import signed_headers

EDGES = ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"]


@pytest.mark.parametrize("at", EDGES)
async def test_a_schedule_beyond_the_dates_crmd_supports_is_422(
    client: Any, auth: Any, system: Crmd, at: str
):
    response = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={"name": "s", "message": "Hi", "rule": "spend > 1", "scheduledAt": at},
    )
    assert response.status == 422
    assert (await response.json())["error"]["details"] == {"field": "$.scheduledAt"}
    assert await system.db.campaigns.count_documents({}) == 0


@pytest.mark.parametrize("at", EDGES)
async def test_a_cursor_with_an_impossible_date_is_400(client: Any, auth: Any, at: str):
    cursor = base64.urlsafe_b64encode(json.dumps([at, "x"]).encode()).decode()
    response = await client.get(f"/api/v1/customers?cursor={cursor}", headers=auth)
    assert response.status == 400
    assert (await response.json())["error"]["details"] == {"field": "cursor"}


async def test_a_token_of_bytes_that_are_no_text_is_401(client: Any):
    reader_writer = await __import__("asyncio").open_connection(
        client.server.host, client.server.port
    )
    reader, writer = reader_writer
    writer.write(
        b"GET /api/v1/user/me HTTP/1.1\r\nHost: 127.0.0.1\r\nx-access-token: \xff\xfe\r\n\r\n"
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert b" 401 " in status_line


@pytest.mark.parametrize("at", EDGES)
async def test_a_receipt_dated_beyond_the_dates_crmd_supports_is_422(
    client: Any, delivering: Crmd, at: str
):
    body = json.dumps(
        [
            {
                "messageId": "m",
                "status": "SENT",
                "eventId": "e1",
                "timestamp": "2026-01-01T00:00:00Z",
            },
            {"messageId": "m", "status": "SENT", "eventId": "e2", "timestamp": at},
        ]
    ).encode()
    secret = plugin_secret(delivering.jwt_secret, "dummy_vendor")
    headers = signed_headers(secret, "m1", int(time.time()), body)
    response = await client.post("/api/v1/deliveryReceipt/dummy_vendor", data=body, headers=headers)
    assert response.status == 422
    assert (await response.json())["error"]["details"] == {"index": 1, "field": "timestamp"}
    assert await delivering.redis.xlen(delivering.streams.receipts) == 0


async def test_a_receipt_body_nested_too_deeply_is_400(client: Any, delivering: Crmd):
    nested = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    body = b'[{"status": "SENT", "eventId": "e", "timestamp": "2026-01-01T00:00:00Z", "x": '
    body += nested + b"}]"  # in a field the vendor ignores
    secret = plugin_secret(delivering.jwt_secret, "dummy_vendor")
    headers = signed_headers(secret, "m1", int(time.time()), body)
    response = await client.post("/api/v1/deliveryReceipt/dummy_vendor", data=body, headers=headers)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "bad_json"


async def test_a_body_that_cannot_be_decoded_is_400_not_500(client: Any, auth: Any):
    answer = await client.post(
        "/api/v1/segments",
        data=b"this is not gzip",
        headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status == 400
    error = (await answer.json())["error"]
    assert error["code"] == "bad_body" and "content-encoding" in error["message"].lower()


async def test_following_the_campaign_list_cursor_reaches_every_campaign(client: Any, auth: Any):
    for n in range(3):
        made = await client.post(
            "/api/v1/campaigns",
            json={"name": f"c{n}", "message": "Hi", "rule": "spend > 1", "draft": True},
            headers=auth,
        )
        assert made.status == 201
    seen, cursor = [], None
    for _ in range(5):
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = await (await client.get(f"/api/v1/campaigns{query}", headers=auth)).json()
        seen += [c["name"] for c in page["items"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["c0", "c1", "c2"]
    bad = await client.get("/api/v1/campaigns?cursor=x", headers=auth)
    assert bad.status == 400 and (await bad.json())["error"]["details"]["field"] == "cursor"
