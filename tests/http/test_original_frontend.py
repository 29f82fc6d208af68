"""The original Mini-CRM frontend's requests, replayed as it sends them (from another
origin, with its x-access-token header, axios's multipart layout, the CORS preflight
before each), and every field it reads checked in crmd's answers.

Its calls are in ShradhaSuman12220474/mini-CRM-frontend: src/components/Dashboard.jsx,
src/pages/{Customers,Orders,SegmentRule,CreateCampaings,Campaign}.jsx. Its API base is
``{crmd}/api/v1``; the campaign form calls ``http://localhost:8080/api/v1/...`` directly.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from crmd.app import Crmd
from crmd.config import Config
from crmd.http import original_lists
from crmd.http.forms import MAX_FIELDS
from crmd.http.original_shapes import conditions
from crmd.services.embedded import Urls
from tests.conftest import make_test_config
from tests.ingest.conftest import wait_done

ORIGIN = "http://127.0.0.1:5173"
CUSTOMERS = (
    "customer_external_id,name,email,phone,location,spend,visits\n"
    "C1,Asha Rao,asha@example.com,9999,Delhi,12000,2\n"
    "C2,Ravi,ravi@example.com,,Pune,300,1\n"
)
ORDERS = (
    "order_external_id,customer_external_id,amount,items,orderDate\n"
    'O1,C1,500,"shoe,sock",2024-05-02\n'
)


@pytest.fixture
def config(services: Urls, port: int, vendor_settings: dict[str, Any]) -> Config:
    return make_test_config(
        services,
        server={"port": port, "cors_origins": [ORIGIN]},
        plugins={"dummy_vendor": vendor_settings},
    )


@pytest.fixture
async def token(client: Any) -> str:
    """What the frontend's Google flow leaves in localStorage['user-info'].token."""
    signed = await client.post("/api/v1/user/dev-login", json={"email": "owner@example.com"})
    value: str = (await signed.json())["token"]
    return value


async def preflight(client: Any, method: str, path: str, headers: str) -> None:
    """What the browser sends before each cross-origin call with a custom header."""
    answer = await client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )
    assert answer.status == 204, (path, await answer.text())
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert method in answer.headers["Access-Control-Allow-Methods"]
    allowed = answer.headers["Access-Control-Allow-Headers"].lower()
    for header in headers.split(","):
        assert header.strip().lower() in allowed
    assert "Origin" in answer.headers["Vary"]


async def call(client: Any, method: str, path: str, token: str, **kwargs: Any) -> Any:
    """A call as axios makes it from the frontend's origin, after its preflight."""
    headers = {"Origin": ORIGIN, "x-access-token": token, **kwargs.pop("headers", {})}
    asked = ",".join(
        h for h in ("x-access-token", "content-type") if h in {k.lower() for k in headers}
    )
    await preflight(client, method, path, asked)
    answer = await client.request(method, path, headers=headers, **kwargs)
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN, path
    assert "Origin" in answer.headers.get("Vary", ""), path
    return answer


def form_file(text: str, name: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", text.encode(), filename=name, content_type="text/csv")
    return form


@pytest.mark.usefixtures("ingesting")
async def test_every_call_of_the_original_frontend_reads_what_it_expects(
    client: Any, system: Crmd, token: str
):
    # Customers.jsx: upload, then the table (data.data[]: name, email, phone, location).
    uploaded = await call(
        client, "POST", "/api/v1/uploads/customers", token, data=form_file(CUSTOMERS, "c.csv")
    )
    assert uploaded.status == 202
    await wait_done(client, {"x-access-token": token}, (await uploaded.json())["uploadId"])
    listed = await (await call(client, "GET", "/api/v1/customers", token)).json()
    assert listed["success"] is True
    people = {c["email"]: c for c in listed["data"]}
    assert people["asha@example.com"]["name"] == "Asha Rao"
    assert people["asha@example.com"]["phone"] == "9999"
    assert people["asha@example.com"]["location"] == "Delhi"
    assert all(c["_id"] for c in listed["data"])
    assert listed["items"] and listed["total"] == 2  # crmd's own shape is still there

    # Orders.jsx: upload (data.message), then the table (_id, customer_external_id, items,
    # amount, createdAt; orders.length).
    uploaded = await call(
        client, "POST", "/api/v1/uploads/orders", token, data=form_file(ORDERS, "o.csv")
    )
    assert uploaded.status == 202
    assert (await uploaded.json())["message"]
    await wait_done(client, {"x-access-token": token}, (await uploaded.json())["uploadId"])
    orders = (await (await call(client, "GET", "/api/v1/orders", token)).json())["data"]
    assert len(orders) == 1
    [order] = orders
    assert order["_id"] and order["customer_external_id"] == "C1"
    assert order["items"] == ["shoe", "sock"] and order["amount"] == 500 and order["createdAt"]

    # Dashboard.jsx: the three cards.
    summary = await (
        await call(
            client,
            "GET",
            "/api/v1/dashboard-summary",
            token,
            headers={"Content-Type": "application/json"},
        )
    ).json()
    assert (summary["totalCustomers"], summary["totalOrders"], summary["totalCampaigns"]) == (
        2,
        1,
        0,
    )

    # SegmentRule.jsx posts to `${baseURL}/api/v1/segment`: the prefix twice.
    made = await call(
        client,
        "POST",
        "/api/v1/api/v1/segment",
        token,
        json={"segment_rule": {"rule": "spend > 1000 AND visits < 3"}},
    )
    assert made.status == 201
    assert (await made.json())["success"] is True

    # CreateCampaings.jsx: the segment and customer lists of its form.
    segments = await (await call(client, "GET", "/api/v1/segment", token)).json()
    assert segments["success"] is True
    [segment] = segments["data"]
    assert segment["_id"] and segment["rule"] == "spend > 1000 AND visits < 3"
    # (its "Generate by AI" button describes the rule from logicType and conditions[])
    assert segment["logicType"] == "AND"
    assert segment["conditions"] == [
        {"field": "spend", "op": ">", "value": "1000"},
        {"field": "visits", "op": "<", "value": "3"},
    ]
    customers = await (await call(client, "GET", "/api/v1/customers", token)).json()
    assert customers["success"] is True
    assert {(c["_id"], c["name"], c["email"]) for c in customers["data"]}

    # ... and the form itself: axios turns the object into multipart fields
    # compaignDetails[name], [ruleId], [message], [intent], [status].
    form = aiohttp.FormData(default_to_multipart=True)
    for key, value in {
        "name": "Win back",
        "ruleId": segment["_id"],
        "message": "Hi {first_name|there}!",
        "intent": "win-back",
        "status": "draft",
    }.items():
        form.add_field(f"compaignDetails[{key}]", value)
    # (axios lets the browser write the multipart Content-Type, with its boundary)
    created = await call(client, "POST", "/api/v1/compaign", token, data=form)
    assert created.status == 201, await created.text()
    body = await created.json()
    assert body["success"] is True and body["savedCompaign"]["_id"]
    stored = await system.db.campaigns.find_one({})
    assert stored["status"] == "draft" and stored["segmentId"] == segment["_id"]
    assert stored["audienceSize"] == 1 and stored["intent"] == "win-back"

    # The original backend's list of campaigns.
    history = await (await call(client, "GET", "/api/v1/compaign/getCompaigns", token)).json()
    assert history["success"] is True
    [campaign] = history["data"]
    assert (campaign["_id"], campaign["name"], campaign["status"]) == (
        body["savedCompaign"]["_id"],
        "Win back",
        "draft",
    )
    summary = await (await call(client, "GET", "/api/v1/dashboard-summary", token)).json()
    assert summary["totalCampaigns"] == 1


async def test_the_same_json_body_on_the_campaign_route_works_too(
    client: Any, system: Crmd, token: str
):
    segment = await (
        await call(
            client, "POST", "/api/v1/segment", token, json={"segment_rule": {"rule": "spend > 1"}}
        )
    ).json()
    created = await call(
        client,
        "POST",
        "/api/v1/compaign",
        token,
        json={
            "compaignDetails": {
                "name": "J",
                "ruleId": segment["data"]["_id"],
                "message": "Hi",
                "status": "draft",
            }
        },
    )
    assert created.status == 201
    assert (await created.json())["status"] == "draft"


async def test_an_origin_not_listed_gets_no_cors_headers(client: Any, token: str):
    asked = await client.options(
        "/api/v1/customers",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in asked.headers
    answer = await client.get(
        "/api/v1/customers", headers={"Origin": "http://evil.example", "x-access-token": token}
    )
    assert answer.status == 200
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "Origin" in answer.headers["Vary"]  # a cache must not serve it to another origin


async def test_an_error_to_a_listed_origin_is_readable_by_its_page(client: Any):
    """The browser hides an answer without CORS headers, errors included: the page could
    not tell a 401 (sign in again) from a network failure."""
    answer = await client.get("/api/v1/customers", headers={"Origin": ORIGIN.upper()})
    assert answer.status == 401
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN  # as configured
    assert (await answer.json())["error"]["code"] == "unauthorized"


async def test_crmd_s_own_clients_see_crmd_s_own_shapes(client: Any, token: str):
    bearer = {"Authorization": f"Bearer {token}"}
    listed = await (await client.get("/api/v1/customers", headers=bearer)).json()
    assert set(listed) == {"items", "total", "cursor"}
    summary = await (await client.get("/api/v1/dashboard-summary", headers=bearer)).json()
    assert set(summary) == {"customers", "orders", "campaigns", "messages"}


async def test_generate_message_answers_the_original_shape_to_a_signed_in_caller(
    client: Any, system: Crmd, token: str
):
    said = await call(
        client, "POST", "/api/generateMessage", token, json={"name": "festive sale", "rule": ""}
    )
    assert said.status == 200
    body = await said.json()
    assert body["success"] is True and body["message"]
    # The frontend sends it with no token at all: that is refused, as on any /api route.
    anonymous = await client.post("/api/generateMessage", json={"name": "x", "rule": ""})
    assert anonymous.status == 401


async def segment_id(client: Any, token: str, rule: str = "spend > 1") -> str:
    made = await client.post(
        "/api/v1/segment", json={"segment_rule": {"rule": rule}}, headers={"x-access-token": token}
    )
    value: str = (await made.json())["data"]["_id"]
    return value


def multipart(fields: list[tuple[str, str]]) -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields:
        form.add_field(name, value)
    return form


@pytest.mark.parametrize("status", ["Draft", "sent", "queued", ""])
async def test_a_campaign_status_other_than_draft_is_refused_not_sent(
    client: Any, system: Crmd, token: str, status: str
):
    """The original never sent on create; crmd does unless told "draft". Anything else
    is a mistake to point at, never a reason to send to a whole segment."""
    segment = await segment_id(client, token)
    details = {"name": "n", "message": "Hi", "ruleId": segment, "status": status}
    fields = [(f"compaignDetails[{k}]", v) for k, v in details.items()]
    for body in ({"data": multipart(fields)}, {"json": {"compaignDetails": details}}):
        answer = await client.post("/api/v1/compaign", headers={"x-access-token": token}, **body)
        assert answer.status == 422, await answer.text()
        error = (await answer.json())["error"]
        assert error["details"]["field"] == "$.compaignDetails.status"
    assert await system.db.campaigns.count_documents({}) == 0


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (
            b"&".join(b"compaignDetails[x%d]=1" % n for n in range(MAX_FIELDS + 1)),
            "",
            "form_too_large",
        ),
        (b"compaignDetails[name]=a&compaignDetails[name]=b", "", "bad_form"),
        (b"compaignDetails[name]=\xff", "", "bad_form"),
        (b"compaignDetails[name]=a", "; charset=bogus", "bad_form"),
        (b"compaignDetails[name][x]=a", "", "bad_form"),
    ],
)
async def test_a_broken_urlencoded_campaign_form_is_400_naming_the_problem(
    client: Any, system: Crmd, token: str, body: bytes, content_type: str, code: str
):
    answer = await client.post(
        "/api/v1/compaign",
        data=body,
        headers={
            "x-access-token": token,
            "Content-Type": "application/x-www-form-urlencoded" + content_type,
        },
    )
    assert answer.status == 400, await answer.text()
    assert (await answer.json())["error"]["code"] == code
    assert await system.db.campaigns.count_documents({}) == 0


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"message": "Hi", "ruleId": "SEGMENT"}, "$.compaignDetails.name"),
        ({"name": "n", "message": "Hi", "ruleId": 5}, "$.compaignDetails.ruleId"),
        ({"name": "n", "message": "Hi", "ruleId": ""}, "$.compaignDetails.ruleId"),
        ({"name": "n", "message": "Hi {nope}", "ruleId": "SEGMENT"}, "message"),
        ({"name": "n", "message": "Hi", "ruleId": "SEGMENT", "foo": 1}, "$.compaignDetails.foo"),
        (
            {"name": "n", "message": "Hi", "ruleId": "SEGMENT", "segmentId": "SEGMENT"},
            "$.compaignDetails.ruleId",
        ),
    ],
)
async def test_a_bad_campaign_names_the_field_the_original_client_sent(
    client: Any, system: Crmd, token: str, details: dict[str, Any], field: str
):
    segment = await segment_id(client, token)
    details = {k: segment if v == "SEGMENT" else v for k, v in details.items()}
    answer = await client.post(
        "/api/v1/compaign", json={"compaignDetails": details}, headers={"x-access-token": token}
    )
    assert answer.status == 422, await answer.text()
    assert (await answer.json())["error"]["details"]["field"] == field
    assert await system.db.campaigns.count_documents({}) == 0


async def test_another_users_segment_is_not_found_by_ruleid(client: Any, system: Crmd, token: str):
    other = await client.post("/api/v1/user/dev-login", json={"email": "other@example.com"})
    theirs = await segment_id(client, (await other.json())["token"])
    answer = await client.post(
        "/api/v1/compaign",
        json={"compaignDetails": {"name": "n", "message": "Hi", "ruleId": theirs}},
        headers={"x-access-token": token},
    )
    assert answer.status == 404
    assert await system.db.campaigns.count_documents({}) == 0


@pytest.mark.parametrize("body", [b"[]", b'"text"', b""])
async def test_generate_message_needs_its_fields(client: Any, token: str, body: bytes):
    answer = await client.post(
        "/api/generateMessage",
        data=body,
        headers={"x-access-token": token, "Content-Type": "application/json"},
    )
    assert answer.status == 400, await answer.text()


def test_the_conditions_of_a_long_rule_are_read_in_one_pass():
    spaced = 'name = "x' + " " * 1985 + 'y"'
    assert conditions(spaced)["conditions"] == [{"field": "name", "op": "=", "value": '"x y"'}]
    assert conditions("a > 1 AND b < 2 OR c = 3")["conditions"] == []
    assert conditions("a > 1 or b < 2") == {
        "logicType": "OR",
        "conditions": [
            {"field": "a", "op": ">", "value": "1"},
            {"field": "b", "op": "<", "value": "2"},
        ],
    }


async def test_the_original_lists_are_answered_whole_up_to_the_cap(
    client: Any, token: str, ingesting: Any, monkeypatch: pytest.MonkeyPatch
):
    """The original backend answered every customer; its customers page shows data[]
    whole. 120 customers take three of crmd's pages of 50, followed here; past the cap
    the answer stops and says so in the log."""
    rows = "customer_external_id,name,email\n" + "".join(
        f"K{i},Person {i},p{i}@example.com\n" for i in range(120)
    )
    answer = await call(
        client, "POST", "/api/v1/uploads/customers", token, data=form_file(rows, "c.csv")
    )
    assert answer.status == 202
    upload = (await answer.json())["uploadId"]
    assert (await wait_done(client, {"x-access-token": token}, upload))["rows"]["persisted"] == 120
    monkeypatch.setattr(original_lists, "MAX_LIMIT", 50)
    whole = await (await call(client, "GET", "/api/v1/customers", token)).json()
    assert len(whole["data"]) == 120 == len({c["_id"] for c in whole["data"]})
    assert whole["cursor"] is None and whole["total"] == 120
    # A client that pages gets its page.
    paged = await (await call(client, "GET", "/api/v1/customers?limit=7", token)).json()
    assert len(paged["data"]) == 7 and paged["cursor"]
    # crmd's own clients page as always.
    mine = await client.get("/api/v1/customers", headers={"Authorization": f"Bearer {token}"})
    assert len((await mine.json())["items"]) == 50
    monkeypatch.setattr(original_lists, "ORIGINAL_LIST_CAP", 100)
    with capture_logs() as logs:
        capped = await (await call(client, "GET", "/api/v1/customers", token)).json()
    assert len(capped["data"]) == 100
    assert [line["cap"] for line in logs if line["event"] == "original.list_capped"] == [100]
