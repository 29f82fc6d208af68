"""The AI summary states the campaign's effect with its interval, in crmd's own
sentence: the offline plugin leads with it word for word, Gemini is asked to carry it,
and crmd appends it to any answer that does not, so that no model's text stands alone
claiming an effect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from crmd_basic_ai import BasicSuggester
from crmd_gemini import GeminiSuggester, Settings

from crmd.ai.service import Suggesters, summary_check, valid_summary, with_statement
from crmd.app import Crmd
from crmd.campaigns.wording import effect_statement, overclaims
from crmd.config import Config
from crmd.services.embedded import Urls
from crmd.testing.servers import make_test_config
from tests.ai.test_ai_api import Gemini, answer
from tests.campaigns.test_delivery_loop import wait_status
from tests.campaigns.test_effect import load_customers, upload_orders, wait_results
from tests.console.test_effect_panel import effect

STATS = {"pending": 0, "sent": 0, "delivered": 1000, "failed": 0, "unknown": 0, "cancelled": 0}
EFFECTS = {
    "significant": (effect(), "the campaign made a difference."),
    "interval includes zero": (
        effect((0.01, -0.02, 0.04), (5.0, -20.0, 30.0)),
        "the interval includes zero, so no effect on conversion can be claimed yet.",
    ),
    "not enough data": (effect(enough=False), "There is not enough data yet"),
    "no holdout": (effect(None), "Without a holdout group the effect cannot be measured"),
}


def campaign(figures: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "name": "Winter sale",
        "rule": "spend > 0",
        "audienceSize": 2000,
        "status": "completed",
        "effect": figures,
        "effectStatement": effect_statement(figures),
    }


@pytest.mark.parametrize("kind", list(EFFECTS))
async def test_the_basic_summary_carries_the_statement_word_for_word(kind: str):
    figures, said = EFFECTS[kind]
    text = await BasicSuggester().summarize_campaign(campaign(figures), STATS, {"bands": []})
    statement = effect_statement(figures)
    assert said in statement
    delivery = "1,000 recipients: 0 sent, 1,000 delivered, 0 failed (100.0% sent or delivered)."
    if kind == "no holdout":  # nothing measured: the delivery leads
        assert text == f"{delivery} {statement}"
    else:
        assert text == f"{statement} {delivery}"
    assert valid_summary(text) == text
    if kind != "significant":
        assert "made a difference" not in text


async def test_a_campaign_with_no_effect_yet_is_summarised_by_its_delivery():
    text = await BasicSuggester().summarize_campaign(campaign(None), STATS, {"bands": []})
    assert text.startswith("1,000 recipients:")


@pytest.fixture
async def gemini_at(aiohttp_server: Any) -> tuple[Gemini, str]:
    """The suite's Gemini stand-in (``tests.ai.test_ai_api``) on a local port."""
    stand_in = Gemini()
    app = web.Application()
    app.router.add_post("/v1beta/models/{model}:generateContent", stand_in.handle)
    server = await aiohttp_server(app)
    return stand_in, str(server.make_url(""))


async def summary_by_gemini(gemini_at: tuple[Gemini, str], said: str) -> tuple[str, str]:
    stand_in, url = gemini_at
    stand_in.script = [answer({"summary": said})]
    figures = effect((0.01, -0.02, 0.04), (5.0, -20.0, 30.0))
    asked = campaign(figures)
    async with aiohttp.ClientSession() as http:
        settings = Settings(api_key="k", model="gemini-test", timeout=5, base_url=url)
        suggesters = Suggesters([GeminiSuggester(settings, http), BasicSuggester()])
        found = await suggesters.first(
            "summary",
            lambda s: s.summarize_campaign(asked, STATS, {"bands": []}),
            valid_summary,
        )
    assert found is not None and found[1] == "gemini"
    prompt = stand_in.requests[0][2]["contents"][0]["parts"][0]["text"]
    assert asked["effectStatement"] in prompt  # to be carried word for word
    assert '"conversionLift":{"estimate":0.01,"low":-0.02,"high":0.04}' in prompt
    return with_statement(found[0], asked["effectStatement"]), asked["effectStatement"]


async def test_gemini_is_given_the_statement_and_an_answer_without_it_gets_it_appended(
    gemini_at: tuple[Gemini, str],
):
    text, statement = await summary_by_gemini(gemini_at, "The campaign was a big success.")
    assert text == f"The campaign was a big success. {statement}"
    assert "no effect on conversion can be claimed" in text


async def test_an_answer_carrying_the_statement_is_kept_as_it_is(gemini_at: tuple[Gemini, str]):
    figures = effect((0.01, -0.02, 0.04), (5.0, -20.0, 30.0))
    carried = f"1,000 messages were delivered.\n{effect_statement(figures)}"
    text, statement = await summary_by_gemini(gemini_at, carried)
    assert text == carried and text.count(statement) == 1


OVERCLAIMS = (
    "The campaign boosted sales by 12 %.",
    "Revenue rose after the message went out.",
    "It increased conversions among messaged customers.",
    "The message drove more orders than usual!",
)
MODEST = (
    "1,000 messages were delivered and 40 customers ordered.",
    "Delivery went well: 98 % of messages arrived.",
)


@pytest.mark.parametrize("text", OVERCLAIMS)
def test_a_claim_of_more_sales_is_refused_unless_the_interval_supports_it(text: str):
    for unsupported in ("interval includes zero", "not enough data", "no holdout"):
        figures = EFFECTS[unsupported][0]
        assert overclaims(text, figures, effect_statement(figures)), unsupported
    significant = EFFECTS["significant"][0]
    assert not overclaims(text, significant, effect_statement(significant))


@pytest.mark.parametrize("text", MODEST)
def test_a_summary_that_claims_no_effect_passes(text: str):
    for figures, _ in EFFECTS.values():
        assert not overclaims(text, figures, effect_statement(figures))
    figures = EFFECTS["interval includes zero"][0]
    statement = effect_statement(figures)
    assert not overclaims(f"{text} {statement}", figures, statement)  # crmd's own words


async def test_gemini_claiming_an_unsupported_effect_is_passed_over_for_basic_ai(
    gemini_at: tuple[Gemini, str],
):
    stand_in, url = gemini_at
    stand_in.script = [answer({"summary": "The campaign boosted sales by 12 %."})]
    figures = EFFECTS["interval includes zero"][0]
    asked = campaign(figures)
    async with aiohttp.ClientSession() as http:
        settings = Settings(api_key="k", model="gemini-test", timeout=5, base_url=url)
        suggesters = Suggesters([GeminiSuggester(settings, http), BasicSuggester()])
        found = await suggesters.first(
            "summary",
            lambda s: s.summarize_campaign(asked, STATS, {"bands": []}),
            summary_check(figures, asked["effectStatement"]),
        )
    assert len(stand_in.requests) == 1  # Gemini was asked, and refused
    assert found is not None and found[1] == "basic_ai"
    assert found[0].startswith(asked["effectStatement"]) and "boosted" not in found[0]


@pytest.fixture
def config(services: Urls, port: int, gemini_at: tuple[Gemini, str]) -> Config:
    """crmd with Gemini's key and the stand-in's address, its clock summing results."""
    return make_test_config(
        services,
        server={"port": port},
        plugins={
            "dummy_vendor": {"delay_min": 0.01, "delay_max": 0.05, "seed": 7},
            "gemini": {
                "api_key": "test-key",
                "model": "gemini-test",
                "timeout": 2,
                "base_url": gemini_at[1],
            },
        },
        campaigns={"clock_interval_seconds": 1.0, "clock_lease_seconds": 3.0},
    )


async def test_a_measured_campaigns_summary_carries_crmds_statement_whatever_gemini_says(
    client: Any, auth: Any, delivering: Crmd, gemini_at: tuple[Gemini, str]
):
    """Through the API: a campaign with half its audience held out, orders after the
    send from half the messaged and a tenth of the held out; Gemini is asked with the
    effect and crmd's sentence, answers without it, and the summary ends with it."""
    supervisor = delivering.start(("clock",))
    assert await supervisor.wait_healthy(10)
    await load_customers(client, auth, 200)
    body = {"name": "Held", "message": "Hi {name}", "rule": "spend > 0", "holdout": 50}
    made = await client.post("/api/v1/campaigns", headers=auth, json=body)
    assert made.status == 201, await made.text()
    campaign = (await made.json())["id"]
    await wait_status(client, auth, campaign, "completed", 60)
    held = {
        log["customerId"]
        async for log in delivering.db.communication_log.find(
            {"campaignId": campaign, "status": "HELD_OUT"}
        )
    }
    numbers = {
        str(c["_id"]): int(c["customer_external_id"][1:])
        async for c in delivering.db.customers.find({}, {"customer_external_id": 1})
    }
    now = datetime.now(UTC).isoformat()
    lines = [
        f"O{n},C{n},25.00,{now}"
        for customer, n in numbers.items()
        if n % 10 < (1 if customer in held else 5)
    ]
    await upload_orders(client, auth, lines)
    figures = (await wait_results(client, auth, campaign, len(lines)))["effect"]
    statement = effect_statement(figures)
    assert "the campaign made a difference" in statement

    stand_in = gemini_at[0]
    stand_in.script = [answer({"summary": "It went well."})]
    summary = await (await client.get(f"/api/v1/campaigns/{campaign}/summary", headers=auth)).json()
    assert summary == {"summary": f"It went well. {statement}", "source": "gemini"}
    prompt = stand_in.requests[-1][2]["contents"][0]["parts"][0]["text"]
    assert statement in prompt and "word for word" in prompt
