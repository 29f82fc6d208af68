"""The audit log through the API: every action the issue lists is recorded with who,
when, from where, the object and the field names; refused attempts too; the list
filters and pages; the CSV is safe in a spreadsheet; nothing but the retention pass
ever deletes an entry, and nothing changes one."""

from __future__ import annotations

import ast
import csv
import inspect
import io
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.config import Config
from crmd.services.embedded import Urls
from crmd.store.tenant import TenantStore
from crmd.testing.servers import make_test_config
from crmd.workspaces import audit
from crmd.workspaces.access import key_hash, new_key
from crmd.workspaces.guard import PAST, action_name
from crmd.workspaces.members import add_member
from crmd.workspaces.roles import API, CONSOLE
from tests.ingest.conftest import CUSTOMERS, upload
from tests.workspaces.test_permissions import sign_in

Headers = dict[str, str]
CRMD = Path(__file__).parents[2] / "crmd"
CAMPAIGN = {"name": "c", "message": "Hi {first_name}", "rule": "spend >= 0", "draft": True}
FLOW = {"name": "f", "trigger": {"event": "signup"}, "steps": [{"wait": "1h"}]}


async def entries(client: Any, headers: Headers, query: str = "") -> list[dict[str, Any]]:
    answer = await client.get(f"/api/v1/audit{query}", headers=headers)
    assert answer.status == 200, await answer.text()
    items: list[dict[str, Any]] = (await answer.json())["items"]
    return items


async def test_every_listed_api_action_is_recorded_with_its_object_and_fields(
    client: Any, system: Crmd
) -> None:
    me, user = await sign_in(client, "owner@example.com")
    started = datetime.now(UTC) - timedelta(seconds=1)

    async def call(method: str, path: str, expect: int, **kwargs: Any) -> Any:
        answer = await client.request(method, path, headers=me, **kwargs)
        assert answer.status == expect, (path, await answer.text())
        return await answer.json() if answer.content_type == "application/json" else None

    campaign = (await call("POST", "/api/v1/campaigns", 201, json=CAMPAIGN))["id"]
    for move in ("send", "pause", "cancel"):
        await call("POST", f"/api/v1/campaigns/{campaign}/{move}", 200)
    segment = await call("POST", "/api/v1/segments", 201, json={"name": "s", "rule": "spend > 1"})
    await call("PUT", f"/api/v1/segments/{segment['id']}", 200, json={"rule": "spend > 2"})
    await call("DELETE", f"/api/v1/segments/{segment['id']}", 204)
    uploaded = await (await upload(client, me, "customers", CUSTOMERS)).json()
    await call("POST", "/api/v1/suppressions", 201, json={"email": "gone@example.com"})
    await call("DELETE", "/api/v1/suppressions/gone@example.com", 204)
    await call("DELETE", "/api/v1/suppressions?source=operator", 200)
    flow = (await call("POST", "/api/v1/flows", 201, json=FLOW))["id"]
    await call("POST", f"/api/v1/flows/{flow}/activate", 200)
    active = (await call("POST", "/api/v1/flows", 201, json={**FLOW, "status": "active"}))["id"]
    _, other = await sign_in(client, "member@example.com")
    await add_member(system.web_db, user, other, "member@example.com", "viewer")
    await call("PATCH", f"/api/v1/workspaces/{user}/members/{other}", 200, json={"role": "editor"})

    found = list(reversed(await entries(client, me)))
    said = [(e["action"], e["objectId"]) for e in found]
    assert said == [
        ("campaign.created", campaign),
        ("campaign.sent", campaign),
        ("campaign.paused", campaign),
        ("campaign.cancelled", campaign),
        ("segment.saved", segment["id"]),
        ("segment.saved", segment["id"]),
        ("segment.deleted", segment["id"]),
        ("import.started", uploaded["uploadId"]),
        ("suppression.added", "gone@example.com"),
        ("suppression.removed", "gone@example.com"),
        ("suppression.removed", ""),  # every address one way came: named by the query
        ("flow.created", flow),
        ("flow.activated", flow),
        ("flow.created", active),
        ("flow.activated", active),
        ("member.role_changed", other),
    ]
    by_action = {e["action"]: e for e in found}
    assert by_action["campaign.created"]["fields"] == sorted(CAMPAIGN)
    assert by_action["member.role_changed"]["fields"] == ["role"]
    assert by_action["campaign.sent"]["fields"] == []
    assert found[10]["fields"] == ["source"]
    for entry in found:
        assert entry["outcome"] == "done" and entry["reason"] is None
        assert entry["by"] == {"userId": user, "email": "owner@example.com"}
        assert entry["from"] == "127.0.0.1"
        at = datetime.fromisoformat(entry["at"])
        assert started <= at <= datetime.now(UTC)
    # A failed call (a campaign cancelled twice: 409) changed nothing: not recorded.
    await call("POST", f"/api/v1/campaigns/{campaign}/cancel", 409)
    assert len(await entries(client, me)) == len(found)


async def test_a_refused_sensitive_action_is_recorded_as_refused(client: Any, system: Crmd):
    owner, workspace = await sign_in(client, "owner@example.com")
    viewer, user = await sign_in(client, "viewer@example.com")
    await add_member(system.web_db, workspace, user, "viewer@example.com", "viewer")
    there = {**viewer, "X-Crmd-Workspace": workspace}
    answer = await client.post("/api/v1/campaigns", headers=there, json=CAMPAIGN)
    assert answer.status == 403
    [entry] = await entries(client, owner, "?outcome=refused")
    assert entry["action"] == "campaign.created" and entry["outcome"] == "refused"
    assert entry["by"] == {"userId": user, "email": "viewer@example.com"}
    assert "send" in entry["reason"] and entry["fields"] == sorted(CAMPAIGN)
    # Reading the log needs "manage": the viewer is refused, and that is not recorded.
    assert (await client.get("/api/v1/audit", headers=there)).status == 403
    assert (await client.get("/api/v1/audit.csv", headers=there)).status == 403
    assert len(await entries(client, owner)) == 1
    # A handler's own check is recorded too: an editor may make a draft flow, not a live one.
    editor, editor_id = await sign_in(client, "editor@example.com")
    await add_member(system.web_db, workspace, editor_id, "editor@example.com", "editor")
    as_editor = {**editor, "X-Crmd-Workspace": workspace}
    live = await client.post("/api/v1/flows", headers=as_editor, json={**FLOW, "status": "active"})
    assert live.status == 403
    [entry] = await entries(client, owner, f"?who={editor_id}")
    assert (entry["action"], entry["outcome"]) == ("flow.created", "refused")
    assert "send" in entry["reason"] and "status" in entry["fields"]


def test_console_verbs_are_recorded_under_the_apis_names() -> None:
    """``/campaigns/{id}/{action}`` and ``/flows/{id}/{move}`` name each action as the
    API's own route does (``campaign.sent``, never ``campaign.send``)."""
    api_names = {rule.audit for rule in API.values() if rule.audit}
    verbs = {"action": ("send", "pause", "resume", "cancel", "retry-failed")}
    verbs["move"] = ("activate", "pause", "archive")
    for (_, path), rule in CONSOLE.items():
        if "{" not in rule.audit:
            assert not rule.audit or rule.audit in api_names, path
            continue
        name = rule.audit.strip("{}").split("{")[1]
        for verb in verbs[name]:
            assert action_name(rule, {"id": "x", name: verb}) in api_names, (path, verb)
    assert set(PAST.values()) <= {n.split(".")[1] for n in api_names}


async def seed(store: TenantStore, now: datetime) -> None:
    """Entries at known times, newest last: a person's and a key's."""
    person = {"userId": "u1", "email": "ann@example.com"}
    key = {"keyId": "k1", "keyName": "shop"}
    rows = [
        (10, "campaign.created", "done", person, "c1", ["name"], None),
        (9, "campaign.sent", "done", key, "c1", [], None),
        (8, "segment.saved", "refused", person, "s1", ["rule"], "needs write"),
        (7, "campaign.paused", "done", person, "=HYPERLINK(1)", [], None),
        (6, "campaignx.odd", "done", key, "c2", [], "+1 reason"),
    ]
    docs = []
    for days, action, outcome, by, object_id, fields, reason in rows:
        doc = {
            "_id": ObjectId(),
            "at": now - timedelta(days=days),
            "action": action,
            "outcome": outcome,
            "by": by,
            "from": "@10.0.0.1",
            "objectId": object_id,
            "fields": fields,
        }
        if reason:
            doc["reason"] = reason
        docs.append(doc)
    await store[audit.COLLECTION].insert_many(docs)


async def test_filters_paging_and_precise_refusals(client: Any, system: Crmd) -> None:
    me, user = await sign_in(client, "owner@example.com")
    now = datetime.now(UTC).replace(microsecond=0)
    await seed(TenantStore(system.db, user), now)

    async def actions(query: str) -> list[str]:
        return [e["action"] for e in await entries(client, me, query)]

    everything = ["campaignx.odd", "campaign.paused", "segment.saved"]
    everything += ["campaign.sent", "campaign.created"]
    assert await actions("") == everything
    assert await actions("?action=campaign.") == [
        "campaign.paused",
        "campaign.sent",
        "campaign.created",
    ]
    assert await actions("?action=campaign.sent") == ["campaign.sent"]
    assert await actions("?who=k1") == ["campaignx.odd", "campaign.sent"]
    assert await actions("?who=ANN@example.com") == await actions("?who=u1")
    assert len(await actions("?who=u1")) == 3
    assert await actions("?objectId=c1") == ["campaign.sent", "campaign.created"]
    assert await actions("?outcome=refused") == ["segment.saved"]
    since = (now - timedelta(days=9)).isoformat()
    until = (now - timedelta(days=7)).isoformat().replace("+00:00", "Z")
    assert await actions(f"?since={since}&until={until}") == ["segment.saved", "campaign.sent"]
    assert await actions("?action=campaign.&who=u1&outcome=done") == [
        "campaign.paused",
        "campaign.created",
    ]
    # Pages of two, newest first, each with the cursor of the next.
    seen, cursor = [], ""
    for _ in range(3):
        answer = await (await client.get(f"/api/v1/audit?limit=2{cursor}", headers=me)).json()
        seen += [e["action"] for e in answer["items"]]
        cursor = f"&cursor={answer['cursor']}" if answer["cursor"] else ""
    assert seen == everything and cursor == ""
    refusals = {
        "?action=Campaign": "action",
        "?action=a.b.c": "action",
        "?outcome=maybe": "outcome",
        "?since=yesterday": "since",
        "?until=2026-13-01T00:00:00Z": "until",
        f"?since={until}&until={since}": "until",
        "?limit=0": "limit",
        "?limit=many": "limit",
        "?actor=u1": "actor",
        "?who=" + "x" * 400: "who",
    }
    for query, field in refusals.items():
        answer = await client.get(f"/api/v1/audit{query}", headers=me)
        body = await answer.json()
        assert answer.status == 422, (query, body)
        assert body["error"]["details"]["field"] == field, (query, body)
        assert body["error"]["code"] == "invalid_parameter"
        csv_answer = await client.get(f"/api/v1/audit.csv{query}", headers=me)
        assert csv_answer.status == 422, query
    for cursor in ("nonsense", "999999999999999." + "a" * 24):
        answer = await client.get(f"/api/v1/audit?cursor={cursor}", headers=me)
        body = await answer.json()
        assert answer.status == 400 and body["error"]["details"]["field"] == "cursor", cursor


async def test_the_csv_has_every_match_and_no_cell_a_spreadsheet_would_run(
    client: Any, system: Crmd
) -> None:
    me, user = await sign_in(client, "owner@example.com")
    now = datetime.now(UTC).replace(microsecond=0)
    await seed(TenantStore(system.db, user), now)
    answer = await client.get(
        "/api/v1/audit.csv?limit=1&cursor=1.ffffffffffffffffffffffff", headers=me
    )
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.reader(io.StringIO(await answer.text())))
    assert rows[0] == ["at", "action", "outcome", "by", "from", "objectId", "fields", "reason"]
    assert len(rows) == 6  # limit and cursor are left aside: every entry
    odd, paused = rows[1], rows[2]
    assert odd[1:] == [
        "campaignx.odd",
        "done",
        "key shop (k1)",
        "'@10.0.0.1",
        "c2",
        "",
        "'+1 reason",
    ]
    assert paused[5] == "'=HYPERLINK(1)"
    assert rows[5][3] == "ann@example.com" and rows[5][6] == "name"
    assert datetime.fromisoformat(rows[5][0]) == now - timedelta(days=10)
    filtered = await client.get("/api/v1/audit.csv?outcome=refused", headers=me)
    rows = list(csv.reader(io.StringIO(await filtered.text())))
    assert [r[1] for r in rows[1:]] == ["segment.saved"] and rows[1][7] == "needs write"


WRITES = frozenset(
    {
        "insert_one",
        "insert_many",
        "update_one",
        "update_many",
        "replace_one",
        "delete_one",
        "delete_many",
        "find_one_and_update",
        "find_one_and_delete",
        "find_one_and_replace",
        "bulk_write",
        "bulk_update",
        "drop",
    }
)


def audit_writes(source: str) -> list[tuple[str, str]]:
    """Each write call on the audit collection in ``source``, as (function, call): on
    ``db.audit``, ``x["audit"]``, or ``x[COLLECTION]`` where the module takes
    ``COLLECTION`` from ``crmd.workspaces.audit`` (or is that module)."""
    tree = ast.parse(source)
    own = (
        any(
            isinstance(node, ast.ImportFrom)
            and node.module == "crmd.workspaces.audit"
            and any(a.name == "COLLECTION" for a in node.names)
            for node in ast.walk(tree)
        )
        or 'COLLECTION = "audit"' in source
    )
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in WRITES:
                continue
            target = ast.unparse(node.func.value)
            if target.endswith((".audit", "['audit']", "audit.COLLECTION]")) or (
                own and target.endswith("[COLLECTION]")
            ):
                found.append((function.name, node.func.attr))
    return found


NAMING_THE_COLLECTION = {
    "workspaces/audit.py",  # the writer
    "store/tenant.py",  # the collection is a tenant's
    "store/indexes.py",
    "http/openapi.py",  # the API document's tag
    "workspaces/audit_routes.py",  # (its routes' tag)
}
"""The modules that may spell the collection's name: a module that names it in a list
it loops over (``for name in ("segments", "audit")``) could write it unseen."""


def test_only_the_audit_module_writes_the_log_and_it_only_appends_and_expires() -> None:
    naming = set()
    for path in CRMD.rglob("*.py"):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.Constant) and n.value == "audit" for n in ast.walk(tree)):
            naming.add(path.relative_to(CRMD).as_posix())
        if path != CRMD / "workspaces" / "audit.py":
            assert audit_writes(path.read_text()) == [], path
    assert naming <= NAMING_THE_COLLECTION, naming - NAMING_THE_COLLECTION
    writer = (CRMD / "workspaces" / "audit.py").read_text()
    assert sorted(audit_writes(writer)) == [
        ("delete_expired", "delete_many"),
        ("record", "insert_one"),
        ("rewrite_traces", "bulk_update"),  # an erased customer's traces, and only those
    ]
    # The check sees a change where it would be made.
    sneaky = (
        "from crmd.workspaces.audit import COLLECTION\n"
        "async def f(db, store):\n"
        "    await db.audit.update_one({}, {})\n"
        "    await store[COLLECTION].delete_one({})\n"
        "    await store['audit'].replace_one({}, {})\n"
    )
    assert audit_writes(sneaky) == [("f", "update_one"), ("f", "delete_one"), ("f", "replace_one")]


async def test_the_retention_pass_deletes_only_entries_older_than_the_setting(
    system: Crmd, client: Any
) -> None:
    _, user = await sign_in(client, "owner@example.com")
    now = datetime.now(UTC).replace(microsecond=0)
    await seed(TenantStore(system.db, user), now)
    other = TenantStore(system.db, "another-workspace")
    await seed(other, now - timedelta(days=100))
    # 10 and 9 days old here, all 5 there; 8 days old is not older than 8 days.
    assert await audit.delete_expired(system.db, now, 8) == 2 + 5
    left = [d["action"] async for d in system.db.audit.find({}, sort=[("at", -1)])]
    assert left == ["campaignx.odd", "campaign.paused", "segment.saved"]
    assert await audit.delete_expired(system.db, now, 8) == 0
    # The pass is one of the clock's tasks, on [audit] retention_days (365 unless set).
    assert Config().audit.retention_days == 365


@pytest.fixture
def config(services: Urls, port: int, vendor_settings: dict[str, Any]) -> Config:
    """``[audit] retention_days = 8`` (the clock task must use the setting)."""
    return make_test_config(
        services,
        server={"port": port},
        plugins={"dummy_vendor": vendor_settings},
        audit={"retention_days": 8},
    )


async def test_the_clock_task_deletes_by_the_configured_days(system: Crmd, client: Any) -> None:
    _, user = await sign_in(client, "owner@example.com")
    store = TenantStore(system.db, user)
    now = datetime.now(UTC).replace(microsecond=0)
    await seed(store, now)
    tasks = dict(system.actors["clock"].tasks)
    assert await tasks["expired_audit"](now) == 2
    assert await store[audit.COLLECTION].count_documents({}) == 3


async def test_a_keys_calls_are_recorded_as_the_keys(client: Any, system: Crmd) -> None:
    owner, workspace = await sign_in(client, "owner@example.com")
    key = new_key()
    key_id = ObjectId()
    await system.db.api_keys.insert_one(
        {
            "_id": key_id,
            "userId": workspace,
            "hash": key_hash(key),
            "name": "shop",
            "scopes": ["read", "write"],
            "createdAt": datetime.now(UTC),
        }
    )
    keyed = {"Authorization": f"Bearer {key}"}
    made = await client.post(
        "/api/v1/segments", headers=keyed, json={"name": "k", "rule": "spend > 1"}
    )
    assert made.status == 201
    refused = await client.post("/api/v1/campaigns", headers=keyed, json=CAMPAIGN)
    assert refused.status == 403
    found = await entries(client, owner, f"?who={key_id}")
    assert [(e["action"], e["outcome"]) for e in found] == [
        ("campaign.created", "refused"),
        ("segment.saved", "done"),
    ]
    for entry in found:
        assert entry["by"] == {"keyId": str(key_id), "keyName": "shop"}
        assert entry["from"] == "127.0.0.1"
    assert "shop" in found[0]["reason"] and found[1]["objectId"] == (await made.json())["id"]
    # The key itself may not read the log (no key holds "manage").
    assert (await client.get("/api/v1/audit", headers=keyed)).status == 403


def says_what_it_changed(handler: Any) -> bool:
    """The handler, or a function of its module it calls, names its object for the log
    (``audited(...)``, or an answer's ``audit.OBJECT``)."""
    module = inspect.getmodule(handler)
    sources = [inspect.getsource(handler)]
    for node in ast.walk(ast.parse(textwrap.dedent(sources[0]))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called = getattr(module, node.func.id, None)
            if inspect.isfunction(called) and called.__module__ == handler.__module__:
                sources.append(inspect.getsource(called))
    return any("audited(" in text or "audit.OBJECT" in text for text in sources)


def test_every_recorded_console_form_says_what_it_changed(system: Crmd) -> None:
    """A console form is recorded only when its handler says what it changed (a form
    shown again changed nothing), so one that never says so would never be recorded."""
    silent = []
    for route in system.app.router.routes():
        if route.resource is None:
            continue
        rule = CONSOLE.get((route.method, route.resource.canonical))
        if rule and rule.audit and not says_what_it_changed(route.handler):
            silent.append((route.method, route.resource.canonical))
    assert silent == []
    assert not says_what_it_changed(test_console_verbs_are_recorded_under_the_apis_names)
