"""Members and roles through the API: who may change whom, the last owner, leaving, and
a removal or a role change taking effect on the very next request."""

from __future__ import annotations

import asyncio
from typing import Any

from crmd.app import Crmd
from crmd.workspaces.members import add_member, create_workspace
from tests.workspaces.test_permissions import sign_in

Headers = dict[str, str]


async def shop(
    client: Any, system: Crmd, *roles: str
) -> tuple[str, dict[str, tuple[Headers, str]]]:
    """A workspace made by owner@, with one member per role in ``roles``."""
    owner_headers, owner = await sign_in(client, "owner@example.com")
    workspace = await create_workspace(system.web_db, owner, "owner@example.com", "Shop")
    people = {"owner": ({**owner_headers, "X-Crmd-Workspace": workspace}, owner)}
    for role in roles:
        headers, user = await sign_in(client, f"{role}@example.com")
        await add_member(system.web_db, workspace, user, f"{role}@example.com", role)
        people[role] = ({**headers, "X-Crmd-Workspace": workspace}, user)
    return workspace, people


async def test_who_may_change_whom(client: Any, system: Crmd) -> None:
    workspace, people = await shop(client, system, "admin", "editor", "viewer")
    base = f"/api/v1/workspaces/{workspace}/members"
    admin, editor, viewer = people["admin"][0], people["editor"][1], people["viewer"]

    raised = await client.patch(f"{base}/{editor}", json={"role": "sender"}, headers=admin)
    assert raised.status == 200
    assert await raised.json() == {"userId": editor, "role": "sender", "was": "editor"}
    made_owner = await client.patch(f"{base}/{editor}", json={"role": "owner"}, headers=admin)
    assert made_owner.status == 403
    assert (await made_owner.json())["error"]["code"] == "owner_only"
    # The attempt is in the workspace's audit log, refused, with who tried it.
    tried = await system.web_db.audit.find_one(
        {"userId": workspace, "action": "member.role_changed", "outcome": "refused"}
    )
    assert tried is not None and tried["by"]["email"] == "admin@example.com"
    assert tried["objectId"] == editor
    bad = await client.patch(f"{base}/{editor}", json={"role": "boss"}, headers=admin)
    assert bad.status == 422
    by_viewer = await client.delete(f"{base}/{editor}", headers=viewer[0])
    assert by_viewer.status == 403
    assert (await by_viewer.json())["error"]["details"] == {"needs": "manage"}

    listed = await (await client.get(base, headers=viewer[0])).json()
    assert {(m["email"], m["role"]) for m in listed["items"]} == {
        ("owner@example.com", "owner"),
        ("admin@example.com", "admin"),
        ("editor@example.com", "sender"),
        ("viewer@example.com", "viewer"),
    }
    # The viewer leaves; their very next request in the workspace is refused.
    assert (await client.delete(f"{base}/{viewer[1]}", headers=viewer[0])).status == 204
    after = await client.get("/api/v1/customers", headers=viewer[0])
    assert after.status == 403
    assert (await after.json())["error"]["code"] == "not_a_member"


async def test_a_role_change_applies_to_the_next_request(client: Any, system: Crmd) -> None:
    workspace, people = await shop(client, system, "sender")
    sender, user = people["sender"]
    campaign = {"name": "Hi", "message": "Hi {name}", "rule": "spend > 0"}
    assert (await client.post("/api/v1/campaigns", json=campaign, headers=sender)).status == 201
    owner = people["owner"][0]
    lowered = await client.patch(
        f"/api/v1/workspaces/{workspace}/members/{user}", json={"role": "viewer"}, headers=owner
    )
    assert lowered.status == 200
    refused = await client.post("/api/v1/campaigns", json=campaign, headers=sender)
    assert refused.status == 403
    assert (await refused.json())["error"]["details"] == {"needs": "send"}


async def test_the_last_owner_stays_whatever_the_interleaving(client: Any, system: Crmd) -> None:
    workspace, people = await shop(client, system, "admin")
    base = f"/api/v1/workspaces/{workspace}/members"
    owner, owner_id = people["owner"]
    alone = await client.delete(f"{base}/{owner_id}", headers=owner)
    assert alone.status == 409
    assert (await alone.json())["error"]["code"] == "last_owner"
    demoted = await client.patch(f"{base}/{owner_id}", json={"role": "admin"}, headers=owner)
    assert demoted.status == 409

    # Two owners try, thirty times at once each, to step down or leave.
    second, second_id = people["admin"]
    made = await client.patch(f"{base}/{second_id}", json={"role": "owner"}, headers=owner)
    assert made.status == 200
    moves = []
    for _ in range(15):
        moves.append(client.patch(f"{base}/{owner_id}", json={"role": "viewer"}, headers=owner))
        moves.append(client.delete(f"{base}/{second_id}", headers=second))
    answers = await asyncio.gather(*moves)
    assert {a.status for a in answers} <= {200, 204, 403, 404, 409}
    owners = await system.web_db.memberships.count_documents(
        {"workspaceId": workspace, "role": "owner"}
    )
    assert owners >= 1


async def test_a_workspace_name_is_text_a_person_can_read(client: Any, system: Crmd) -> None:
    headers, user = await sign_in(client, "namer@example.com")
    for name in ("\u0000\u0001", "\u202eevil", " ", "x" * 81):
        made = await client.post("/api/v1/workspaces", json={"name": name}, headers=headers)
        assert made.status == 422, name
        assert (await made.json())["error"]["details"]["field"] in ("name", "$.name")
    assert await system.web_db.memberships.count_documents({"userId": user}) == 1
    made = await client.post("/api/v1/workspaces", json={"name": "Café Ünïcode"}, headers=headers)
    assert made.status == 201
