"""The console's forms are recorded in the audit log as the API's calls are: the same
action names, the object changed, the form's field names; a form that changed nothing
(a count, a second cancel, an address already suppressed) is not recorded, and a
viewer's refused form is, as refused."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from crmd.app import Crmd
from crmd.console.workspace import WORKSPACE_COOKIE
from crmd.workspaces.members import add_member
from tests.console.test_security import signed_in
from tests.ingest.conftest import CUSTOMERS

FLOW = {"name": "f", "trigger": {"event": "signup"}, "steps": [{"wait": "1h"}]}


async def log_of(system: Crmd, workspace: str) -> list[dict[str, Any]]:
    found = system.db.audit.find({"userId": workspace}, sort=[("at", 1), ("_id", 1)])
    return [doc async for doc in found]


async def user_of(system: Crmd, email: str) -> str:
    doc = await system.db.users.find_one({"email": email})
    assert doc is not None
    return str(doc["_id"])


async def test_each_console_form_records_its_action_object_and_fields(
    client: Any, system: Crmd
) -> None:
    csrf = await signed_in(client, "owner@example.com")
    me = await user_of(system, "owner@example.com")

    async def post(path: str, expect: int = 303, **data: str) -> Any:
        answer = await client.post(path, data={"csrf": csrf, **data}, allow_redirects=False)
        assert answer.status == expect, (path, answer.status, await answer.text())
        return answer

    # A count shows the form again: nothing saved, nothing recorded.
    await post("/segments", 200, name="Top", rule="spend > 1", action="count")
    assert await log_of(system, me) == []
    await post("/segments", name="Top", rule="spend > 1", action="save")
    segment = str((await system.db.segments.find_one({"name": "Top"}))["_id"])
    await post(f"/segments/{segment}", name="Top", rule="spend > 2")
    await post(f"/segments/{segment}/delete")

    made = await post("/campaigns", name="C", message="Hi {name}", rule="spend > 1", action="draft")
    campaign = re.fullmatch(r"/campaigns/([0-9a-f]{24})", made.headers["Location"])[1]
    for move in ("send", "pause", "cancel"):
        await post(f"/campaigns/{campaign}/{move}")
    again = await post(f"/campaigns/{campaign}/cancel")  # refused: shown as a problem
    assert again.headers["Location"] == f"/campaigns/{campaign}"

    await post("/suppressions", email="gone@example.com", reason="asked")
    await post("/suppressions", email="gone@example.com")  # already there: nothing new
    await post("/suppressions/remove", email="gone@example.com")

    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("kind", "customers")
    form.add_field("file", CUSTOMERS.encode(), filename="c.csv", content_type="text/csv")
    sent = await client.post("/imports", data=form, allow_redirects=False)
    assert sent.status == 303
    upload = sent.headers["Location"].rsplit("/", 1)[1]

    api = {"Authorization": f"Bearer {await _token(client, 'owner@example.com')}"}
    flow = (await (await client.post("/api/v1/flows", json=FLOW, headers=api)).json())["id"]
    await post(f"/flows/{flow}/activate")

    found = [(d["action"], d["objectId"]) for d in await log_of(system, me)]
    assert found == [
        ("segment.saved", segment),
        ("segment.saved", segment),
        ("segment.deleted", segment),
        ("campaign.created", campaign),
        ("campaign.sent", campaign),
        ("campaign.paused", campaign),
        ("campaign.cancelled", campaign),
        ("suppression.added", "gone@example.com"),
        ("suppression.removed", "gone@example.com"),
        ("import.started", upload),
        ("flow.created", flow),  # (through the API)
        ("flow.activated", flow),
    ]
    entries = await log_of(system, me)
    for entry in entries:
        assert entry["outcome"] == "done"
        assert entry["by"] == {"userId": me, "email": "owner@example.com"}
        assert entry["from"] == "127.0.0.1"
        assert "csrf" not in entry["fields"]
    assert entries[0]["fields"] == ["action", "name", "rule"]
    assert entries[7]["fields"] == ["email", "reason"]


async def _token(client: Any, email: str) -> str:
    answer = await client.post("/api/v1/user/dev-login", json={"email": email})
    token: str = (await answer.json())["token"]
    return token


async def test_a_viewers_refused_form_is_recorded_as_refused(client: Any, system: Crmd) -> None:
    await signed_in(client, "owner@example.com")
    workspace = await user_of(system, "owner@example.com")
    client.session.cookie_jar.clear()
    csrf = await signed_in(client, "viewer@example.com")
    viewer = await user_of(system, "viewer@example.com")
    await add_member(system.web_db, workspace, viewer, "viewer@example.com", "viewer")
    client.session.cookie_jar.update_cookies({WORKSPACE_COOKIE: workspace})
    csrf = await signed_in(client, "viewer@example.com")
    answer = await client.post(
        "/campaigns",
        data={"csrf": csrf, "name": "C", "message": "Hi", "rule": "spend > 1", "action": "draft"},
        allow_redirects=False,
    )
    assert answer.status == 403
    [entry] = await log_of(system, workspace)
    assert entry["action"] == "campaign.created" and entry["outcome"] == "refused"
    assert entry["by"] == {"userId": viewer, "email": "viewer@example.com"}
    assert "send" in entry["reason"]
    assert await system.db.campaigns.count_documents({}) == 0
    # The viewer's own workspace holds nothing of it.
    assert await log_of(system, viewer) == []


async def test_members_and_invitations_are_recorded_from_the_api_and_the_console(
    client: Any, system: Crmd
) -> None:
    csrf = await signed_in(client, "owner@example.com")
    workspace = await user_of(system, "owner@example.com")
    api = {"Authorization": f"Bearer {await _token(client, 'owner@example.com')}"}
    base = f"/api/v1/workspaces/{workspace}/invitations"
    # Through the API: an invitation made, one withdrawn.
    first = await client.post(
        base, json={"email": "ann@example.com", "role": "editor"}, headers=api
    )
    assert first.status == 201
    invited = await first.json()
    other = await client.post(base, json={"email": "cy@example.com", "role": "viewer"}, headers=api)
    withdrawn = (await other.json())["id"]
    assert (await client.delete(f"{base}/{withdrawn}", headers=api)).status == 204
    # Through the console: an invitation made; Ann accepts hers; her role changed; removed.
    made = await client.post(
        "/members/invite",
        data={"csrf": csrf, "email": "bo@example.com", "role": "viewer"},
        allow_redirects=False,
    )
    assert made.status == 303
    bo = await system.db.invitations.find_one({"email": "bo@example.com"})
    assert bo is not None
    client.session.cookie_jar.clear()
    ann_csrf = await signed_in(client, "ann@example.com")
    ann = await user_of(system, "ann@example.com")
    token = invited["link"].rsplit("/", 1)[1]
    joined = await client.post(
        f"/invitations/{token}", data={"csrf": ann_csrf}, allow_redirects=False
    )
    assert joined.status == 303
    client.session.cookie_jar.clear()
    csrf = await signed_in(client, "owner@example.com")
    for path, data in (
        (f"/members/{ann}/role", {"role": "sender"}),
        (f"/members/{ann}/remove", {}),
    ):
        answer = await client.post(path, data={"csrf": csrf, **data}, allow_redirects=False)
        assert answer.status == 303, path

    found = [
        (d["action"], d["objectId"], d["by"]["email"]) for d in await log_of(system, workspace)
    ]
    owner = "owner@example.com"
    assert found == [
        ("member.invited", invited["id"], owner),
        ("member.invited", withdrawn, owner),
        ("invitation.withdrawn", withdrawn, owner),
        ("member.invited", str(bo["_id"]), owner),
        ("member.joined", workspace, "ann@example.com"),  # in the workspace joined
        ("member.role_changed", ann, owner),
        ("member.removed", ann, owner),
    ]
    entries = await log_of(system, workspace)
    assert entries[0]["fields"] == ["email", "role"] and entries[5]["fields"] == ["role"]
