"""Flows' definitions over HTTP: made, read, listed, changed into versions, activated,
paused and archived; refused whole, naming the field, with nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd

WELCOME: dict[str, Any] = {
    "name": "Welcome",
    "trigger": {"event": "signup"},
    "steps": [{"wait": "1d"}, {"send": {"message": "Welcome, {name}!"}}],
}


async def post(client: Any, auth: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
    response = await client.post("/api/v1/flows", json=body, headers=auth)
    return response.status, await response.json()


async def call(
    client: Any, auth: dict[str, str], method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    response = await client.request(method, f"/api/v1/flows{path}", json=body, headers=auth)
    return response.status, await response.json()


async def stored(system: Crmd) -> tuple[int, int]:
    db = system.web_db
    return await db.flows.count_documents({}), await db.flow_versions.count_documents({})


@pytest.fixture
async def bob(client: Any) -> dict[str, str]:
    response = await client.post("/api/v1/user/dev-login", json={"email": "bob@example.com"})
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


def with_steps(*steps: Any, **fields: Any) -> dict[str, Any]:
    return {**WELCOME, "steps": list(steps), **fields}


BAD = [
    (with_steps({"wait": "1000y"}), "$.steps[0].wait", "invalid_flow"),
    (with_steps({"wait": "365001d"}), "$.steps[0].wait", "invalid_flow"),
    (with_steps({"exit": {}}, {"wait": "1h"}), "$.steps[1]", "invalid_flow"),
    (
        with_steps({"branch": {"rule": "spend > 1", "yes": [{"branch": {"rule": "visits >"}}]}}),
        "$.steps[0].branch.yes[0].branch",
        "invalid_flow",
    ),
    (
        with_steps(
            {"branch": {"rule": "spend > 1", "yes": [{"wait": "2h", "send": {"message": "x"}}]}}
        ),
        "$.steps[0].branch.yes[0]",
        "invalid_flow",
    ),
    (
        with_steps({"branch": {"rule": "spend > 1", "no": [{"wait": "10x"}]}}),
        "$.steps[0].branch.no[0].wait",
        "invalid_flow",
    ),
    (with_steps({"send": {"message": "Hi {nme}"}}), "$.steps[0].send.message", "invalid_flow"),
    (
        with_steps({"send": {"message": "Hi", "vendor": "carrier-pigeon"}}),
        "$.steps[0].send.vendor",
        "invalid_flow",
    ),
    ({**WELCOME, "trigger": {"event": "signup", "where": "spend >> 1"}}, "$.trigger.where", ""),
    ({**WELCOME, "trigger": {"segment": "65f0c0ffee00000000000001"}}, "$.trigger.segment", ""),
    ({**WELCOME, "trigger": {"segment": "not-an-id"}}, "$.trigger.segment", ""),
    ({**WELCOME, "trigger": {"anniversary": "visits"}}, "$.trigger.anniversary", ""),
    ({**WELCOME, "trigger": {"event": "a", "order": {}}}, "$.trigger", ""),
    ({**WELCOME, "reentryDays": 5}, "$.reentryDays", ""),
    ({**WELCOME, "goal": {"order": False}}, "$.goal", ""),
    ({**WELCOME, "steps": []}, "$.steps", "invalid_body"),
    ({**WELCOME, "steps": [{"wait": "1h"}] * 101}, "$.steps", "invalid_body"),
    ({**WELCOME, "status": "archived"}, "$.status", "invalid_body"),
    ({**WELCOME, "status": "paused"}, "$.status", "invalid_flow"),
    ({**WELCOME, "trigger": {"event": "bad name!"}}, "$.trigger.event", "invalid_body"),
    (with_steps({"loop": {"to": 0}}), "$.steps[0].loop", "invalid_body"),
]


@pytest.mark.parametrize(("body", "path", "code"), BAD)
async def test_a_bad_flow_is_refused_naming_the_field_and_nothing_is_stored(
    client: Any, auth: dict[str, str], system: Crmd, body: dict[str, Any], path: str, code: str
):
    status, answer = await post(client, auth, body)
    assert status == 422, answer
    assert answer["error"]["details"]["field"] == path
    if code:
        assert answer["error"]["code"] == code
    assert await stored(system) == (0, 0)


async def test_a_rule_error_answers_its_column(client: Any, auth: dict[str, str]):
    body = {**WELCOME, "trigger": {"event": "signup", "where": "event.plan = 'pro' and x > 1"}}
    status, answer = await post(client, auth, body)
    assert status == 422
    assert answer["error"]["details"] == {"field": "$.trigger.where", "column": 24}
    assert "unknown field 'x'" in answer["error"]["message"]


async def test_a_flow_is_made_read_and_listed(client: Any, auth: dict[str, str], system: Crmd):
    status, made = await post(client, auth, WELCOME)
    assert status == 201, made
    assert made["status"] == "draft" and made["version"] == 1
    assert made["triggerKey"] == "event:signup"
    assert made["definition"]["steps"][0]["wait"] == "1d"
    assert made["definition"]["entry"] == "once"
    assert made["actions"] == ["activate", "archive"]
    assert [v["version"] for v in made["versions"]] == [1]
    assert made["counts"] == dict.fromkeys(
        ("entered", "waiting", "active", "done", "exited", "converted", "messaged"), 0
    )
    status, read = await call(client, auth, "GET", f"/{made['id']}")
    assert status == 200 and read == made
    doc = await system.web_db.flows.find_one({"_id": ObjectId(made["id"])})
    assert doc["triggerKey"] == "event:signup" and doc["userId"]
    assert doc["definition"]["steps"] == [
        {"wait": "1d"},
        {"send": {"message": "Welcome, {name}!", "subject": "", "html": ""}},
    ]
    version = await system.web_db.flow_versions.find_one({"_id": f"{made['id']}:1"})
    assert version["definition"] == doc["definition"] and version["userId"] == doc["userId"]
    status, second = await post(client, auth, {**WELCOME, "name": "Second", "status": "active"})
    assert status == 201 and second["status"] == "active" and second["activatedAt"]
    status, listed = await call(client, auth, "GET", "?limit=1")
    assert status == 200
    assert [f["name"] for f in listed["items"]] == ["Second"] and listed["total"] == 2
    status, rest = await call(client, auth, "GET", f"?limit=1&cursor={listed['cursor']}")
    assert [f["name"] for f in rest["items"]] == ["Welcome"] and rest["cursor"] is None


async def test_editing_a_draft_changes_version_one_in_place(
    client: Any, auth: dict[str, str], system: Crmd
):
    _, made = await post(client, auth, WELCOME)
    status, changed = await call(
        client, auth, "PATCH", f"/{made['id']}", {"steps": [{"wait": "2h"}], "name": "W2"}
    )
    assert status == 200, changed
    assert changed["version"] == 1 and changed["name"] == "W2"
    assert changed["definition"]["steps"][0]["wait"] == "2h"
    assert changed["definition"]["trigger"]["event"] == "signup"  # untouched: kept
    _, one = await call(client, auth, "GET", f"/{made['id']}/versions/1")
    assert one["definition"]["steps"][0]["wait"] == "2h"
    assert await stored(system) == (1, 1)


async def test_editing_an_active_flow_makes_a_version_and_the_old_one_stays(
    client: Any, auth: dict[str, str], system: Crmd
):
    _, made = await post(client, auth, {**WELCOME, "status": "active"})
    flow = f"/{made['id']}"
    status, renamed = await call(client, auth, "PATCH", flow, {"name": "Hello"})
    assert status == 200 and renamed["version"] == 1 and renamed["name"] == "Hello"
    new_steps = [{"wait": "3d"}, {"send": {"message": "Still there, {name}?"}}]
    status, changed = await call(client, auth, "PATCH", flow, {"steps": new_steps})
    assert status == 200, changed
    assert changed["version"] == 2 and changed["status"] == "active"
    assert [v["version"] for v in changed["versions"]] == [1, 2]
    _, one = await call(client, auth, "GET", f"{flow}/versions/1")
    _, two = await call(client, auth, "GET", f"{flow}/versions/2")
    assert one["definition"]["steps"][0]["wait"] == "1d" and one["version"] == 1
    assert two["definition"]["steps"][0]["wait"] == "3d" and two["flowId"] == made["id"]
    same = await call(client, auth, "PATCH", flow, {"steps": new_steps})
    assert same[1]["version"] == 2  # nothing changed: no version
    status, _ = await call(client, auth, "GET", f"{flow}/versions/3")
    assert status == 404
    status, _ = await call(client, auth, "GET", f"{flow}/versions/x")
    assert status == 404
    status, paused = await call(client, auth, "POST", f"{flow}/pause")
    assert status == 200 and paused["version"] == 2
    status, changed = await call(client, auth, "PATCH", flow, {"entry": "every"})
    assert changed["version"] == 3 and changed["status"] == "paused"
    assert await stored(system) == (1, 3)


async def test_a_goal_is_set_kept_and_removed_by_patch(client: Any, auth: dict[str, str]):
    _, made = await post(client, auth, WELCOME)
    flow = f"/{made['id']}"
    _, changed = await call(client, auth, "PATCH", flow, {"goal": {"event": "bought"}})
    assert changed["definition"]["goal"]["event"] == "bought"
    _, kept = await call(client, auth, "PATCH", flow, {"name": "Renamed"})
    assert kept["definition"]["goal"]["event"] == "bought"
    _, removed = await call(client, auth, "PATCH", flow, {"goal": None, "quietHours": None})
    assert removed["definition"]["goal"] is None
    status, answer = await call(client, auth, "PATCH", flow, {"goal": {"where": "spend > 1"}})
    assert status == 422 and answer["error"]["details"]["field"] == "$.goal"
    status, answer = await call(client, auth, "PATCH", flow, {"entry": "every", "reentryDays": 7})
    assert status == 200 and answer["definition"]["reentryDays"] == 7
    _, once = await call(client, auth, "PATCH", flow, {"entry": "once"})
    assert once["definition"]["entry"] == "once" and once["definition"]["reentryDays"] == 0


async def test_a_bad_change_is_refused_and_changes_nothing(
    client: Any, auth: dict[str, str], system: Crmd
):
    _, made = await post(client, auth, {**WELCOME, "status": "active"})
    status, answer = await call(
        client, auth, "PATCH", f"/{made['id']}", {"name": "X", "steps": [{"wait": "400d"}]}
    )
    assert status == 422 and answer["error"]["details"]["field"] == "$.steps[0].wait"
    _, read = await call(client, auth, "GET", f"/{made['id']}")
    assert read["name"] == "Welcome" and read["version"] == 1
    assert await stored(system) == (1, 1)


async def test_transitions_and_their_409s(client: Any, auth: dict[str, str]):
    _, made = await post(client, auth, WELCOME)
    flow = f"/{made['id']}"

    async def act(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await call(client, auth, method, f"{flow}{path}", body)

    status, answer = await act("POST", "/pause")
    assert status == 409 and "only an active flow" in answer["error"]["message"]
    status, active = await act("POST", "/activate")
    assert status == 200 and active["status"] == "active" and active["activatedAt"]
    assert active["actions"] == ["pause", "archive"]
    assert (await act("POST", "/activate"))[0] == 409
    status, paused = await act("POST", "/pause")
    assert status == 200 and paused["status"] == "paused"
    assert (await act("POST", "/pause"))[0] == 409
    status, answer = await act("PATCH", "", {"status": "draft"})
    assert status == 409 and "back to draft" in answer["error"]["message"]
    status, again = await act("PATCH", "", {"status": "active"})
    assert status == 200 and again["status"] == "active" and again["version"] == 1
    status, archived = await act("DELETE", "")
    assert status == 200 and archived["status"] == "archived" and archived["actions"] == []
    for method, path, body in (
        ("DELETE", "", None),
        ("POST", "/activate", None),
        ("POST", "/pause", None),
        ("PATCH", "", {"name": "Back"}),
    ):
        status, answer = await act(method, path, body)
        assert status == 409, (method, path)
        assert answer["error"]["code"] == "conflict"
    _, listed = await call(client, auth, "GET", "")
    assert listed["items"] == [] and listed["total"] == 0
    _, everything = await call(client, auth, "GET", "?status=archived")
    assert [f["id"] for f in everything["items"]] == [made["id"]]
    assert (await act("GET", ""))[1]["status"] == "archived"  # kept
    status, answer = await call(client, auth, "GET", "?status=gone")
    assert status == 422 and answer["error"]["details"]["field"] == "status"


async def test_activating_checks_again_what_may_have_gone(client: Any, auth: dict[str, str]):
    segment = await client.post(
        "/api/v1/segments", json={"name": "Big", "rule": "spend > 10"}, headers=auth
    )
    segment_id = (await segment.json())["id"]
    status, made = await post(client, auth, {**WELCOME, "trigger": {"segment": segment_id}})
    assert status == 201 and made["triggerKey"] == f"segment:{segment_id}"
    assert (await client.delete(f"/api/v1/segments/{segment_id}", headers=auth)).status == 204
    status, answer = await call(client, auth, "POST", f"/{made['id']}/activate")
    assert status == 422 and answer["error"]["details"]["field"] == "$.trigger.segment"
    assert (await call(client, auth, "GET", f"/{made['id']}"))[1]["status"] == "draft"


async def test_another_users_flow_is_not_found(
    client: Any, auth: dict[str, str], bob: dict[str, str], system: Crmd
):
    _, made = await post(client, auth, WELCOME)
    flow = f"/{made['id']}"
    for method, path, body in (
        ("GET", "", None),
        ("GET", "/versions/1", None),
        ("PATCH", "", {"name": "Mine"}),
        ("POST", "/activate", None),
        ("POST", "/pause", None),
        ("DELETE", "", None),
    ):
        status, answer = await call(client, bob, method, f"{flow}{path}", body)
        assert status == 404, (method, path)
        assert answer["error"]["code"] == "not_found"
    assert (await call(client, bob, "GET", ""))[1] == {"items": [], "total": 0, "cursor": None}
    _, read = await call(client, auth, "GET", flow)
    assert read["name"] == "Welcome" and read["status"] == "draft"
    # Bob's segment is not Alice's either.
    segment = await client.post("/api/v1/segments", json={"rule": "spend > 1"}, headers=bob)
    bobs = (await segment.json())["id"]
    status, answer = await post(client, auth, {**WELCOME, "trigger": {"segment": bobs}})
    assert status == 422 and answer["error"]["details"]["field"] == "$.trigger.segment"


async def test_counts_come_from_states_steps_and_the_flows_campaigns(
    client: Any, auth: dict[str, str], system: Crmd
):
    _, made = await post(client, auth, {**WELCOME, "status": "active"})
    flow_id = made["id"]
    user = (await system.web_db.flows.find_one({"_id": ObjectId(flow_id)}))["userId"]
    now = datetime.now(UTC)
    statuses = ["waiting"] * 3 + ["active", "done", "done", "exited", "converted"]
    await system.web_db.flow_states.insert_many(
        [
            {"_id": f"{flow_id}:c{i}:1", "userId": user, "flowId": flow_id, "status": s}
            for i, s in enumerate(statuses)
        ]
        + [{"_id": "other", "userId": user, "flowId": "elsewhere", "status": "done"}]
    )
    steps = [("0", 1, 4), ("1", 1, 2), ("0", 2, 9)]  # (path, version, runs)
    await system.web_db.flow_steps.insert_many(
        [
            {
                "_id": f"{flow_id}:{path}:{version}:{i}",
                "userId": user,
                "flowId": flow_id,
                "version": version,
                "path": path,
                "kind": "wait",
                "at": now,
            }
            for path, version, runs in steps
            for i in range(runs)
        ]
    )
    figures = {"pending": 1, "sent": 2, "delivered": 3, "failed": 1, "unknown": 0, "heldOut": 0}
    await system.web_db.campaigns.insert_many(
        [
            {"userId": user, "kind": "flow", "flowId": flow_id, "stats": figures},
            {"userId": user, "kind": "flow", "flowId": flow_id, "stats": {**figures, "sent": 4}},
            {"userId": "someone-else", "kind": "flow", "flowId": flow_id, "stats": figures},
            {"userId": user, "kind": "flow", "flowId": flow_id, "stats": {"sent": 5}},
            {"userId": user, "flowId": "another", "kind": "flow", "stats": figures},
        ]
    )
    _, read = await call(client, auth, "GET", f"/{flow_id}")
    assert read["counts"] == {
        "entered": 8,
        "waiting": 3,
        "active": 1,
        "done": 2,
        "exited": 1,
        "converted": 1,
        "messaged": (2 + 3 + 1) + (4 + 3 + 1) + 5,
    }
    assert read["steps"] == [
        {"path": "0", "kind": "wait", "runs": 4},
        {"path": "1", "kind": "send", "runs": 2},
    ]
    _, listed = await call(client, auth, "GET", "")
    assert listed["items"][0]["counts"] == read["counts"]
