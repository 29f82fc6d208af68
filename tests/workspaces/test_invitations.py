"""Invitations through the API: a signed link that works once, for the invited address,
until it expires or is withdrawn; each refusal as documented in
``crmd.workspaces.invitations``, and audited."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns.letters import hand_over
from crmd.campaigns.vendors import Vendors
from crmd.workspaces.access import Caller
from crmd.workspaces.invitation_links import (
    BadInvitationLink,
    ForgedInvitationLink,
    InvitationLinks,
)
from crmd.workspaces.invitations import PER_ADDRESS_PER_DAY, Invitations
from crmd.workspaces.members import add_member, create_workspace
from crmd.workspaces.roles import ROLES

Headers = dict[str, str]


async def sign_in(client: Any, email: str) -> tuple[Headers, str]:
    answer = await (await client.post("/api/v1/user/dev-login", json={"email": email})).json()
    return {"Authorization": f"Bearer {answer['token']}"}, answer["user"]["id"]


@pytest.fixture
async def shop(client: Any) -> tuple[str, Headers]:
    """The owner's own workspace and the owner's headers."""
    headers, owner = await sign_in(client, "owner@example.com")
    return owner, headers


async def invite(client: Any, shop: Any, email: str, role: str = "viewer") -> Any:
    workspace, headers = shop
    return await client.post(
        f"/api/v1/workspaces/{workspace}/invitations",
        json={"email": email, "role": role},
        headers=headers,
    )


def token_of(answer: dict[str, Any]) -> str:
    return str(answer["link"]).rsplit("/invitations/", 1)[1]


async def accept(client: Any, headers: Headers, token: str) -> Any:
    return await client.post("/api/v1/invitations/accept", json={"token": token}, headers=headers)


async def audit_of(system: Crmd, workspace: str) -> list[dict[str, Any]]:
    return [d async for d in system.web_db.audit.find({"userId": workspace}).sort("at", 1)]


async def test_the_invited_person_joins_with_the_role_once(
    client: Any, system: Crmd, shop: Any
) -> None:
    workspace, owner = shop
    made = await invite(client, shop, " Bob@Example.com ", "editor")
    assert made.status == 201, await made.text()
    answer = await made.json()
    assert answer["email"] == "bob@example.com" and answer["role"] == "editor"
    assert answer["link"].startswith(str(client.make_url("")).rstrip("/") + "/invitations/")
    assert answer["emailedBy"] == "dummy_vendor" and answer["emailProblem"] == ""
    expires = datetime.fromisoformat(answer["expiresAt"])
    assert timedelta(days=6.9) < expires - datetime.now(UTC) <= timedelta(days=7)
    base = f"/api/v1/workspaces/{workspace}/invitations"
    listed = await (await client.get(base, headers=owner)).json()
    assert [i["id"] for i in listed["items"]] == [answer["id"]]
    assert listed["items"][0]["link"] == answer["link"]

    bob, bob_id = await sign_in(client, "bob@example.com")
    joined = await accept(client, bob, token_of(answer))
    assert joined.status == 200, await joined.text()
    assert (await joined.json())["workspaceId"] == workspace
    assert (await joined.json())["role"] == "editor"
    mine = await (await client.get("/api/v1/workspaces", headers=bob)).json()
    assert {(w["id"], w["role"]) for w in mine["items"]} == {
        (bob_id, "owner"),
        (workspace, "editor"),
    }
    assert (await (await client.get(base, headers=owner)).json())["items"] == []

    again = await accept(client, bob, token_of(answer))
    assert again.status == 410
    assert (await again.json())["error"]["code"] == "invitation_used"
    actions = [(e["action"], e["outcome"]) for e in await audit_of(system, workspace)]
    assert actions == [
        ("member.invited", "done"),
        ("member.joined", "done"),
        ("member.joined", "refused"),
    ]


async def test_a_forwarded_link_lets_nobody_else_in(client: Any, system: Crmd, shop: Any) -> None:
    workspace, _ = shop
    answer = await (await invite(client, shop, "bob@example.com")).json()
    carol, carol_id = await sign_in(client, "carol@example.com")
    refused = await accept(client, carol, token_of(answer))
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "wrong_person"
    assert await system.web_db.memberships.find_one({"_id": f"{workspace}:{carol_id}"}) is None
    entry = (await audit_of(system, workspace))[-1]
    assert entry["action"] == "member.joined" and entry["outcome"] == "refused"
    assert entry["by"] == {"userId": carol_id, "email": "carol@example.com"}
    assert "bob@example.com" in entry["reason"]
    bob, _ = await sign_in(client, "bob@example.com")
    assert (await accept(client, bob, token_of(answer))).status == 200


async def test_an_expired_link_is_gone(client: Any, system: Crmd, shop: Any) -> None:
    workspace, owner = shop
    answer = await (await invite(client, shop, "bob@example.com")).json()
    await system.web_db.invitations.update_one(
        {"_id": ObjectId(answer["id"])},
        {"$set": {"expiresAt": datetime.now(UTC) - timedelta(seconds=1)}},
    )
    bob, _ = await sign_in(client, "bob@example.com")
    refused = await accept(client, bob, token_of(answer))
    assert refused.status == 410
    assert (await refused.json())["error"]["code"] == "invitation_expired"
    listed = await client.get(f"/api/v1/workspaces/{workspace}/invitations", headers=owner)
    assert (await listed.json())["total"] == 0
    assert (await invite(client, shop, "bob@example.com")).status == 201  # invited anew


async def test_a_withdrawn_link_is_gone(client: Any, shop: Any) -> None:
    workspace, owner = shop
    answer = await (await invite(client, shop, "bob@example.com")).json()
    one = f"/api/v1/workspaces/{workspace}/invitations/{answer['id']}"
    assert (await client.delete(one, headers=owner)).status == 204
    bob, _ = await sign_in(client, "bob@example.com")
    refused = await accept(client, bob, token_of(answer))
    assert refused.status == 410
    assert (await refused.json())["error"]["code"] == "invitation_withdrawn"
    twice = await client.delete(one, headers=owner)
    assert twice.status == 404
    assert (await twice.json())["error"]["code"] == "invitation_not_found"
    unknown = await client.delete(
        f"/api/v1/workspaces/{workspace}/invitations/nonsense", headers=owner
    )
    assert unknown.status == 404


async def test_a_changed_or_cut_link_is_refused(client: Any, shop: Any) -> None:
    answer = await (await invite(client, shop, "bob@example.com")).json()
    token = token_of(answer)
    bob, _ = await sign_in(client, "bob@example.com")
    other = "A" if token[3] != "A" else "B"
    forged = await accept(client, bob, token[:3] + other + token[4:])
    assert forged.status == 403
    assert (await forged.json())["error"]["code"] == "forged_invitation_link"
    cut = await accept(client, bob, token[:-5])
    assert cut.status == 400
    assert (await cut.json())["error"]["code"] == "bad_invitation_link"
    made_elsewhere = InvitationLinks(b"another server's key", "http://x").token(answer["id"])
    assert (await accept(client, bob, made_elsewhere)).status == 403


async def test_who_may_invite_whom(client: Any, system: Crmd, shop: Any) -> None:
    workspace, _ = shop
    admin, admin_id = await sign_in(client, "admin@example.com")
    await add_member(system.web_db, workspace, admin_id, "admin@example.com", "admin")
    as_admin = (workspace, {**admin, "X-Crmd-Workspace": workspace})
    refused = await invite(client, as_admin, "new@example.com", "owner")
    assert refused.status == 403
    assert (await refused.json())["error"]["code"] == "owner_only"
    assert (await invite(client, as_admin, "new@example.com", "admin")).status == 201
    assert (await invite(client, shop, "other@example.com", "owner")).status == 201
    viewer, viewer_id = await sign_in(client, "viewer@example.com")
    await add_member(system.web_db, workspace, viewer_id, "viewer@example.com", "viewer")
    as_viewer = (workspace, {**viewer, "X-Crmd-Workspace": workspace})
    no = await invite(client, as_viewer, "x@example.com")
    assert no.status == 403 and (await no.json())["error"]["details"] == {"needs": "manage"}
    listed = await client.get(f"/api/v1/workspaces/{workspace}/invitations", headers=as_viewer[1])
    assert listed.status == 403
    member = await invite(client, shop, "Viewer@example.com")
    assert member.status == 409
    assert (await member.json())["error"]["code"] == "already_member"
    twice = await invite(client, shop, "new@example.com")
    assert twice.status == 409
    assert (await twice.json())["error"]["code"] == "already_invited"
    bad = await invite(client, shop, "not an address")
    assert bad.status == 422
    assert (await bad.json())["error"]["details"]["field"] == "email"
    role = await invite(client, shop, "y@example.com", "king")
    assert role.status == 422


async def test_a_member_already_is_told_so(client: Any, system: Crmd, shop: Any) -> None:
    """Invited, then added some other way before accepting: 409, and the link kept."""
    workspace, owner = shop
    answer = await (await invite(client, shop, "bob@example.com")).json()
    bob, bob_id = await sign_in(client, "bob@example.com")
    await add_member(system.web_db, workspace, bob_id, "bob@example.com", "viewer")
    refused = await accept(client, bob, token_of(answer))
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "already_member"
    listed = await client.get(f"/api/v1/workspaces/{workspace}/invitations", headers=owner)
    assert (await listed.json())["total"] == 1


def test_links_read_back_what_they_name_and_nothing_else() -> None:
    links = InvitationLinks(b"k" * 32, "https://crm.example.com/")
    invitation = str(ObjectId())
    url = links.url(invitation)
    assert url.startswith("https://crm.example.com/invitations/")
    token = url.rsplit("/", 1)[1]
    assert links.read(token) == invitation
    for position in range(len(token)):
        if token[position] == ".":
            continue
        other = "A" if token[position] != "A" else "B"
        changed = token[:position] + other + token[position + 1 :]
        with pytest.raises((BadInvitationLink, ForgedInvitationLink)):
            links.read(changed)
    for broken in ("", token[:-1], token + "A", token.replace(".", ""), "x" * 39):
        with pytest.raises(BadInvitationLink):
            links.read(broken)


async def test_two_accepts_at_once_make_one_member(client: Any, system: Crmd, shop: Any) -> None:
    workspace, _ = shop
    answer = await (await invite(client, shop, "bob@example.com", "sender")).json()
    bob, bob_id = await sign_in(client, "bob@example.com")
    first, second = await asyncio.gather(
        accept(client, bob, token_of(answer)), accept(client, bob, token_of(answer))
    )
    assert sorted([first.status, second.status]) in ([200, 409], [200, 410])
    found = [m async for m in system.web_db.memberships.find({"workspaceId": workspace})]
    assert sorted(m["userId"] for m in found) == sorted([workspace, bob_id])


async def test_with_no_mail_the_link_alone_is_given(system: Crmd, shop: Any) -> None:
    """``[workspaces] email_invitations = false``, or no vendor at all: nothing is sent,
    and the invitation says so by naming no vendor."""
    workspace, _ = shop
    assert await hand_over(Vendors([]), "m1", "a@example.com", "s", "t") == ("", "")
    owner = Caller(workspace, ROLES["owner"], "owner", workspace, "owner@example.com")
    links = InvitationLinks(b"k" * 32, "http://crm.example.com")
    made = await Invitations(system.web_db, links, 3).invite(owner, "c@example.com", "viewer")
    assert made.emailed_by == "" and made.email_problem == ""
    stored = await system.web_db.invitations.find_one({"_id": ObjectId(made.id)})
    assert stored is not None and "emailedBy" not in stored
    assert timedelta(days=2.9) < made.expires_at - datetime.now(UTC) <= timedelta(days=3)


async def test_the_e_mail_carries_the_link_under_a_one_line_subject(system: Crmd) -> None:
    made = await create_workspace(system.web_db, str(ObjectId()), "o@example.com", "Shop")
    await system.web_db.workspaces.update_one(
        {"_id": ObjectId(made)}, {"$set": {"name": "Shop\r\nBcc: all@example.com"}}
    )
    letters: list[tuple[str, str, str, str]] = []

    async def keep(message_id: str, to: str, subject: str, text: str) -> tuple[str, str]:
        letters.append((message_id, to, subject, text))
        return "a_vendor", ""

    links = InvitationLinks(b"k" * 32, "http://crm.example.com")
    owner = Caller(made, ROLES["owner"], "owner", "u1", "o@example.com")
    service = Invitations(system.web_db, links, 7, keep)
    invited = await service.invite(owner, "d@example.com", "editor")
    assert invited.emailed_by == "a_vendor"
    [(message_id, to, subject, text)] = letters
    assert message_id == f"invitation-{invited.id}" and to == "d@example.com"
    assert subject == "Join Shop Bcc: all@example.com on crmd"
    assert links.url(invited.id) in text and "as editor" in text


async def test_inviting_and_withdrawing_in_a_loop_stops_at_the_daily_limit(
    client: Any, shop: Any
) -> None:
    """Each invitation e-mails the address: withdrawn ones count, so a loop cannot send
    one person more than PER_ADDRESS_PER_DAY letters a day."""
    workspace, owner = shop
    for _ in range(PER_ADDRESS_PER_DAY):
        made = await invite(client, shop, "target@example.org")
        assert made.status == 201
        withdrawn = await client.delete(
            f"/api/v1/workspaces/{workspace}/invitations/{(await made.json())['id']}",
            headers=owner,
        )
        assert withdrawn.status == 204
    refused = await invite(client, shop, "target@example.org")
    assert refused.status == 429 and refused.headers["Retry-After"] == "3600"
    assert (await refused.json())["error"]["details"] == {"limit": PER_ADDRESS_PER_DAY}
    assert (await invite(client, shop, "someone.else@example.org")).status == 201
