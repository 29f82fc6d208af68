"""``/api/v1/webhooks``: a subscription made, listed without its secret, changed,
deleted; bad URLs refused naming the field; another tenant's webhook is not found; a
tenant's count is limited; the test button posts at once and says what came back."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from crmd.app import Crmd
from crmd.http.keys import WEBHOOKS
from tests.webhooks.conftest import Endpoint, expected_signature, sign_in, subscribe


async def test_a_webhook_is_made_listed_changed_and_deleted(client: Any, auth: Any):
    made = await client.post(
        "/api/v1/webhooks",
        headers=auth,
        json={
            "url": "https://hooks.example.com/crmd",
            "events": ["message.outcome", "import.done", "message.outcome"],
            "description": "  our CRM  ",
        },
    )
    assert made.status == 201
    body = await made.json()
    assert body["secret"].startswith("whsec_")
    assert len(body["secret"]) >= len("whsec_") + 32  # base64 of 24 bytes or more
    assert body["events"] == ["import.done", "message.outcome"]
    assert body["description"] == "our CRM" and body["enabled"] is True

    listed = await (await client.get("/api/v1/webhooks", headers=auth)).json()
    assert listed["total"] == 1
    assert "secret" not in listed["items"][0]
    assert listed["items"][0]["id"] == body["id"]
    one = await (await client.get(f"/api/v1/webhooks/{body['id']}", headers=auth)).json()
    assert "secret" not in one and one["url"] == "https://hooks.example.com/crmd"

    changed = await client.patch(
        f"/api/v1/webhooks/{body['id']}",
        headers=auth,
        json={"enabled": False, "events": ["customer.unsubscribed"], "url": "http://h.example/x"},
    )
    assert changed.status == 200
    after = await changed.json()
    assert (after["enabled"], after["events"], after["url"]) == (
        False,
        ["customer.unsubscribed"],
        "http://h.example/x",
    )
    gone = await client.delete(f"/api/v1/webhooks/{body['id']}", headers=auth)
    assert gone.status == 204
    again = await client.get(f"/api/v1/webhooks/{body['id']}", headers=auth)
    assert again.status == 404


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/x", "http:// or https://"),
        ("https://user:pw@example.com/x", "user name or password"),
        ("https://token@example.com/x", "user name or password"),
        ("https:///nohost", "no host"),
        ("https://example.com/" + "a" * 2000, "2000"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com:99999/", "not a valid URL"),
        ("javascript:alert(1)", "http:// or https://"),
    ],
)
async def test_a_bad_url_is_refused_naming_the_field(client: Any, auth: Any, url: str, words: str):
    refused = await client.post(
        "/api/v1/webhooks", headers=auth, json={"url": url, "events": ["import.done"]}
    )
    assert refused.status == 422
    error = (await refused.json())["error"]
    assert error["details"]["field"] == "$.url"
    assert words in error["message"]


async def test_bad_events_are_refused_naming_the_field(client: Any, auth: Any):
    for events, field in (([], "$.events"), (["order.placed"], "$.events[0]")):
        refused = await client.post(
            "/api/v1/webhooks", headers=auth, json={"url": "https://e.example/", "events": events}
        )
        assert refused.status == 422
        assert (await refused.json())["error"]["details"]["field"] == field
    made = await subscribe(client, auth, "https://e.example/", ["import.done"])
    patched = await client.patch(
        f"/api/v1/webhooks/{made['id']}", headers=auth, json={"url": "gopher://e.example/"}
    )
    assert patched.status == 422
    assert (await patched.json())["error"]["details"]["field"] == "$.url"


async def test_private_addresses_are_refused_when_the_setting_says_so(
    client: Any, auth: Any, system: Crmd
):
    allowed = await subscribe(client, auth, "http://127.0.0.1:9/x", ["import.done"])
    assert allowed["url"] == "http://127.0.0.1:9/x"  # the default: allowed
    service = system.app[WEBHOOKS]  # the switch turned off, as a config would
    service.settings = msgspec.structs.replace(service.settings, allow_private=False)
    for url in ("http://127.0.0.1/x", "http://10.1.2.3/", "http://[::1]/", "http://localhost/"):
        refused = await client.post(
            "/api/v1/webhooks", headers=auth, json={"url": url, "events": ["import.done"]}
        )
        assert refused.status == 422, url
        assert "private" in (await refused.json())["error"]["message"]


async def test_another_tenants_webhook_is_not_found(client: Any, auth: Any, endpoint: Endpoint):
    mine = await subscribe(client, auth, endpoint.at("/a"), ["import.done"])
    other = await sign_in(client, "other@example.com")
    path = f"/api/v1/webhooks/{mine['id']}"
    for method, suffix, body in (
        ("GET", "", None),
        ("PATCH", "", {"enabled": False}),
        ("DELETE", "", None),
        ("POST", "/test", None),
        ("GET", "/deliveries", None),
    ):
        answer = await client.request(method, path + suffix, headers=other, json=body)
        assert answer.status == 404, (method, suffix)
    assert (await (await client.get("/api/v1/webhooks", headers=other)).json())["total"] == 0
    assert endpoint.received == []  # the other tenant's test posted nothing
    still = await (await client.get(path, headers=auth)).json()
    assert still["enabled"] is True
    malformed = await client.get("/api/v1/webhooks/not-an-id", headers=auth)
    assert malformed.status == 404


async def test_a_tenant_has_at_most_the_configured_number(client: Any, auth: Any, system: Crmd):
    limit = system.config.webhooks.max_per_tenant
    for i in range(limit):
        await subscribe(client, auth, f"https://e.example/{i}", ["import.done"])
    one_more = {"url": "https://e.example/x", "events": ["import.done"]}
    refused = await client.post("/api/v1/webhooks", headers=auth, json=one_more)
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "too_many_webhooks"
    other = await sign_in(client, "other@example.com")
    await subscribe(client, other, "https://e.example/o", ["import.done"])  # theirs is apart


async def test_the_test_button_posts_a_signed_test_event_and_shows_the_answer(
    client: Any, auth: Any, endpoint: Endpoint
):
    made = await subscribe(client, auth, endpoint.at("/hook"), ["import.done"])
    endpoint.answers.append((200, "thanks " + "x" * 5000))
    tested = await client.post(f"/api/v1/webhooks/{made['id']}/test", headers=auth)
    assert tested.status == 200
    result = await tested.json()
    assert result["delivered"] is True
    delivery = result["delivery"]
    assert delivery["status"] == "delivered" and delivery["responseStatus"] == 200
    assert delivery["responseBody"].startswith("thanks ") and len(delivery["responseBody"]) == 1024
    assert delivery["attempts"] == 1 and delivery["latencyMs"] >= 0
    [got] = endpoint.to("/hook")
    assert got.headers["webhook-id"] == delivery["id"]
    assert got.headers["webhook-signature"] == expected_signature(
        made["secret"], got.headers, got.body
    )
    event = json.loads(got.body)
    assert event["type"] == "webhook.test" and event["data"]["webhookId"] == made["id"]

    endpoint.answers.append((500, "down"))
    failed = await (await client.post(f"/api/v1/webhooks/{made['id']}/test", headers=auth)).json()
    assert failed["delivered"] is False
    assert failed["delivery"]["status"] == "failed"  # a test is not tried again
    assert failed["delivery"]["responseStatus"] == 500
    assert failed["delivery"]["responseBody"] == "down"

    log = await (await client.get(f"/api/v1/webhooks/{made['id']}/deliveries", headers=auth)).json()
    assert [d["id"] for d in log["items"]] == [failed["delivery"]["id"], delivery["id"]]


async def test_a_test_to_an_endpoint_that_does_not_answer_says_why(
    client: Any, auth: Any, endpoint: Endpoint, system: Crmd
):
    made = await subscribe(client, auth, "http://127.0.0.1:9/nothing-listens", ["import.done"])
    result = await (await client.post(f"/api/v1/webhooks/{made['id']}/test", headers=auth)).json()
    assert result["delivered"] is False
    assert result["delivery"]["responseStatus"] is None
    assert result["delivery"]["error"]  # the connection was refused: said so


async def test_the_delivery_log_is_paged_newest_first(client: Any, auth: Any, endpoint: Endpoint):
    made = await subscribe(client, auth, endpoint.at("/p"), ["import.done"])
    sent = []
    for _ in range(5):
        tested = await client.post(f"/api/v1/webhooks/{made['id']}/test", headers=auth)
        result = await tested.json()
        sent.append(result["delivery"]["id"])
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await client.get(
            f"/api/v1/webhooks/{made['id']}/deliveries", headers=auth, params=query
        )
        assert page.status == 200
        body = await page.json()
        assert len(body["items"]) <= 2
        seen += [d["id"] for d in body["items"]]
        cursor = body["cursor"]
        if cursor is None:
            break
    assert seen == sent[::-1]
    bad = await client.get(
        f"/api/v1/webhooks/{made['id']}/deliveries", headers=auth, params={"cursor": "zzz"}
    )
    assert bad.status == 400
    assert (await bad.json())["error"]["details"]["field"] == "cursor"
