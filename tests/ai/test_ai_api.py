"""AI endpoints with the offline plugin alone, and with a local Gemini stand-in whose
bad answers must fall back to the offline plugin."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from crmd_basic_ai import TEMPLATES

from crmd.app import Crmd
from crmd.campaigns.template import parse_template, render
from crmd.config import Config
from crmd.services.embedded import Urls
from tests.conftest import make_test_config
from tests.ingest.conftest import upload, wait_done

CUSTOMERS = "name,email,spend,lastActive\n" + "".join(
    f"N{i},n{i}@x.io,{i * 1000},{'2020-01-01' if i % 2 else '2099-01-01'}\n" for i in range(12)
)


class Gemini:
    """Speaks generateContent: each request takes the next behaviour from ``script``."""

    def __init__(self) -> None:
        self.script: list[Callable[[dict[str, Any]], Any]] = []
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append((request.path, dict(request.headers), body))
        behaviour = self.script.pop(0) if self.script else answer({})
        result = behaviour(body)
        return await result if asyncio.iscoroutine(result) else result


def answer(payload: Any) -> Callable[[dict[str, Any]], web.Response]:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return lambda _: web.json_response(
        {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}}]}
    )


async def slow(_: dict[str, Any]) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({})


@pytest.fixture
async def gemini_server(aiohttp_server: Any) -> tuple[Gemini, str]:
    stand_in = Gemini()
    app = web.Application()
    app.router.add_post("/v1beta/models/{model}:generateContent", stand_in.handle)
    server = await aiohttp_server(app)
    return stand_in, str(server.make_url(""))


@pytest.fixture
def config(
    services: Urls, port: int, vendor_settings: dict[str, Any], request: pytest.FixtureRequest
) -> Config:
    """With the ``gemini`` fixture, crmd is built with a Gemini key and the stand-in's
    address; without it, with no key (the basic plugin answers alone)."""
    plugins: dict[str, Any] = {"dummy_vendor": vendor_settings}
    if "gemini" in request.fixturenames:
        _, url = request.getfixturevalue("gemini_server")
        plugins["gemini"] = {
            "api_key": "test-key",
            "model": "gemini-test",
            "timeout": 1,
            "base_url": url,
        }
    return make_test_config(services, server={"port": port}, plugins=plugins)


@pytest.fixture
def gemini(gemini_server: tuple[Gemini, str]) -> Gemini:
    return gemini_server[0]


async def test_without_a_key_every_endpoint_answers_from_the_basic_plugin(
    client: Any, auth: Any, system: Crmd, ingesting: Any
):
    answer_ = await (await upload(client, auth, "customers", CUSTOMERS)).json()
    await wait_done(client, auth, answer_["uploadId"])
    messages = await (
        await client.post(
            "/api/v1/ai/messages",
            headers=auth,
            json={"objective": "bring back lapsed buyers", "intent": "win-back"},
        )
    ).json()
    assert messages["source"] == "basic_ai" and messages["variants"] == TEMPLATES["win-back"]
    rule = await (
        await client.post(
            "/api/v1/ai/rule",
            headers=auth,
            json={"text": "spent over 5000 and inactive for 3 months"},
        )
    ).json()
    same = await (
        await client.post(
            "/api/v1/segment/preview",
            headers=auth,
            json={"rule": "spend > 5000 AND lastActive < 90d"},
        )
    ).json()
    assert rule["source"] == "basic_ai"
    assert rule["audienceSize"] == same["audienceSize"] == 3
    tags = await (
        await client.post(
            "/api/v1/ai/tags", headers=auth, json={"rule": "spend > 10000 AND lastActive < 90d"}
        )
    ).json()
    assert tags == {"tags": ["High value", "Win-back", "Niche"], "source": "basic_ai"}
    draft = await (
        await client.post(
            "/api/v1/campaigns",
            headers=auth,
            json={"name": "d", "message": "Hi", "rule": "spend > 1", "draft": True},
        )
    ).json()
    summary = await (
        await client.get(f"/api/v1/campaigns/{draft['id']}/summary", headers=auth)
    ).json()
    assert summary == {
        "summary": "11 recipients: 0 sent, 0 delivered, 0 failed, 11 pending "
        "(0.0% sent or delivered).",
        "source": "basic_ai",
    }
    for request in (
        client.get(
            "/api/v1/generateMessage", headers=auth, params={"name": "festive", "rule": "spend > 1"}
        ),
        client.request(
            "GET", "/api/v1/generateMessage", headers=auth, json={"name": "festive sale"}
        ),
    ):
        body = await (await request).json()
        assert body == {"success": True, "message": TEMPLATES["festive offer"][0]}


async def test_sentences_nobody_understands_are_422(client: Any, auth: Any, system: Crmd):
    response = await client.post("/api/v1/ai/rule", headers=auth, json={"text": "make it pop"})
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "not_understood"


async def test_gemini_answers_when_it_answers_well(
    client: Any, auth: Any, system: Crmd, gemini: Gemini
):
    gemini.script = [
        answer({"variants": ["Hi {first_name|there}, new stock is in!"]}),
        answer({"rule": "spend > 7000"}),
        answer({"tags": ["Big spenders"]}),
        answer({"summary": "It went well."}),
    ]
    messages = await (
        await client.post(
            "/api/v1/ai/messages",
            headers=auth,
            json={"objective": "launch", "intent": "new arrival", "n": 1},
        )
    ).json()
    assert messages == {"variants": ["Hi {first_name|there}, new stock is in!"], "source": "gemini"}
    rule = await (
        await client.post("/api/v1/ai/rule", headers=auth, json={"text": "people who spend a lot"})
    ).json()
    assert (rule["rule"], rule["source"]) == ("spend > 7000", "gemini")
    tags = await (
        await client.post("/api/v1/ai/tags", headers=auth, json={"rule": "spend > 7000"})
    ).json()
    assert tags == {"tags": ["Big spenders"], "source": "gemini"}
    draft = await (
        await client.post(
            "/api/v1/campaigns",
            headers=auth,
            json={"name": "d", "message": "Hi", "rule": "spend > 1", "draft": True},
        )
    ).json()
    summary = await (
        await client.get(f"/api/v1/campaigns/{draft['id']}/summary", headers=auth)
    ).json()
    assert summary == {"summary": "It went well.", "source": "gemini"}
    path, headers, body = gemini.requests[0]
    assert path == "/v1beta/models/gemini-test:generateContent"
    assert headers["x-goog-api-key"] == "test-key"
    assert body["contents"][0]["parts"][0]["text"]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(slow, id="timeout"),
        pytest.param(lambda _: web.json_response({"error": {"code": 429}}, status=429), id="429"),
        pytest.param(answer("this is not json {"), id="malformed JSON"),
        pytest.param(
            lambda _: web.Response(text="<html>", content_type="text/html"), id="not Gemini's JSON"
        ),
        pytest.param(answer({"rule": "spend >> lots"}), id="rule that does not parse"),
    ],
)
async def test_bad_gemini_answers_fall_back_to_the_basic_plugin(
    client: Any, auth: Any, system: Crmd, gemini: Gemini, failure: Any
):
    gemini.script = [failure]
    rule = await (
        await client.post("/api/v1/ai/rule", headers=auth, json={"text": "inactive for 90 days"})
    ).json()
    assert (rule["rule"], rule["source"]) == ("lastActive < 90d", "basic_ai")
    assert len(gemini.requests) == 1


async def test_messages_with_unknown_placeholders_are_discarded(
    client: Any, auth: Any, system: Crmd, gemini: Gemini
):
    gemini.script = [answer({"variants": ["Hi {firstname}!", "Dear {customer_name}"]})]
    messages = await (
        await client.post(
            "/api/v1/ai/messages", headers=auth, json={"objective": "x", "intent": "reminder"}
        )
    ).json()
    assert messages["source"] == "basic_ai"


def test_basic_variants_fit_an_sms_and_use_known_placeholders():
    long_name = {"name": "Bartholomew-Alexander Montgomery-Smith"}
    for intent, variants in TEMPLATES.items():
        assert len(variants) >= 3, intent
        for variant in variants:
            assert "{first_name|" in variant
            assert len(render(parse_template(variant), long_name)) <= 160, variant
