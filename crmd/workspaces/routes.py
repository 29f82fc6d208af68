"""``/api/v1/workspaces``: the caller's workspaces, each one's members and invitations,
and accepting an invitation. The guard checks the caller's role in the workspace the
path names (``crmd.workspaces.guard``)."""

from __future__ import annotations

from aiohttp import web

from crmd.http.bodies import json_body
from crmd.http.describe import described
from crmd.http.keys import ACCESS, CALLER, DATABASE, INVITATIONS, USER
from crmd.http.responses import json_response, secret_json
from crmd.workspaces import invitations, members
from crmd.workspaces.roles import MANAGE, OWN
from crmd.workspaces.schema import (
    AcceptInvitation,
    ChangeRole,
    CreateWorkspace,
    Invitation,
    InvitationList,
    InvitationPath,
    Invite,
    Joined,
    Member,
    MemberList,
    MemberPath,
    RoleChanged,
    Workspace,
    WorkspaceList,
    WorkspacePath,
)

routes = web.RouteTableDef()


@routes.get("/api/v1/workspaces")
@described("List your workspaces", tag="workspaces", ok=WorkspaceList)
async def list_workspaces(request: web.Request) -> web.Response:
    """Each with your role in it; ``current`` marks the one this request works in
    (send ``X-Crmd-Workspace: <id>`` to work in another)."""
    me, now = request[USER], request[CALLER].workspace
    found = await members.memberships_of(request.app[DATABASE], me.id)
    items = [Workspace(m.workspace, m.name, m.role, m.workspace == now) for m in found]  # type: ignore[arg-type]
    return json_response(WorkspaceList(items, len(items)))


@routes.post("/api/v1/workspaces")
@described(
    "Create a workspace", tag="workspaces", body=CreateWorkspace, ok={201: Workspace}, errors=(403,)
)
async def create_workspace(request: web.Request) -> web.Response:
    """You become its owner. It starts empty: data belongs to one workspace."""
    body = await json_body(request, CreateWorkspace)
    me = request[USER]
    made = await members.create_workspace(request.app[DATABASE], me.id, me.email, body.name)
    return json_response(Workspace(made, body.name, "owner", False), status=201)


@routes.get("/api/v1/workspaces/{id}/members")
@described("List a workspace's members", tag="workspaces", path=WorkspacePath, ok=MemberList)
async def list_members(request: web.Request) -> web.Response:
    found = await members.members(request.app[DATABASE], request.match_info["id"])
    items = [Member(**m) for m in found]
    return json_response(MemberList(items, len(items)))


@routes.patch("/api/v1/workspaces/{id}/members/{user}")
@described(
    "Change a member's role",
    tag="workspaces",
    path=MemberPath,
    body=ChangeRole,
    ok=RoleChanged,
    errors=(404, 409),
)
async def change_role(request: web.Request) -> web.Response:
    """Admins change roles below owner; only an owner makes or unmakes an owner, and
    the last owner stays one (409 ``last_owner``)."""
    body = await json_body(request, ChangeRole)
    who = request[CALLER]
    user = request.match_info["user"]
    changed = await members.change_role(
        request.app[DATABASE], who.workspace, user, body.role, OWN in who.permissions
    )
    return json_response(RoleChanged(user, changed["to"], changed["from"]))


@routes.delete("/api/v1/workspaces/{id}/members/{user}")
@described(
    "Remove a member, or leave",
    tag="workspaces",
    path=MemberPath,
    ok={204: None},
    errors=(404, 409),
)
async def remove_member(request: web.Request) -> web.Response:
    """Anyone may leave (their own user id); removing someone else needs ``manage``,
    and an owner only an owner. The last owner cannot leave (409 ``last_owner``)."""
    who = request[CALLER]
    user = request.match_info["user"]
    if user != who.user:
        who.require(MANAGE)
    await members.remove_member(request.app[DATABASE], who.workspace, user, OWN in who.permissions)
    return web.Response(status=204)


def invitation_answer(request: web.Request, found: invitations.Invitation) -> Invitation:
    return Invitation(
        found.id,
        found.email,
        found.role,  # type: ignore[arg-type]
        request.app[INVITATIONS].link(found),
        found.invited_by,
        found.created_at,
        found.expires_at,
        found.emailed_by,
        found.email_problem,
    )


@routes.post("/api/v1/workspaces/{id}/invitations")
@described(
    "Invite someone by e-mail",
    tag="workspaces",
    path=WorkspacePath,
    body=Invite,
    ok={201: Invitation},
    errors=(409,),
)
async def invite(request: web.Request) -> web.Response:
    """The answer carries the signed link (``link``) to copy; it is also handed, as an
    e-mail, to the default vendor (``emailedBy`` names it). The link works once, for
    that address only, for ``[workspaces] invitation_days`` (7). Only an owner invites
    an owner (403 ``owner_only``); a member already is 409 ``already_member``, an
    address invited already 409 ``already_invited``."""
    body = await json_body(request, Invite)
    made = await request.app[INVITATIONS].invite(request[CALLER], body.email, body.role)
    return secret_json(invitation_answer(request, made), status=201)


@routes.get("/api/v1/workspaces/{id}/invitations")
@described("List pending invitations", tag="workspaces", path=WorkspacePath, ok=InvitationList)
async def list_invitations(request: web.Request) -> web.Response:
    """Those neither accepted, withdrawn nor expired, oldest first, each with its link."""
    found = await request.app[INVITATIONS].pending(request[CALLER].workspace)
    items = [invitation_answer(request, i) for i in found]
    return secret_json(InvitationList(items, len(items)))


@routes.delete("/api/v1/workspaces/{id}/invitations/{invitation}")
@described(
    "Withdraw an invitation",
    tag="workspaces",
    path=InvitationPath,
    ok={204: None},
    errors=(404,),
)
async def withdraw_invitation(request: web.Request) -> web.Response:
    """Its link then answers 410 ``invitation_withdrawn``. An invitation that is not
    pending in this workspace (used, withdrawn, another's) is 404
    ``invitation_not_found``."""
    workspace = request[CALLER].workspace
    await request.app[INVITATIONS].withdraw(workspace, request.match_info["invitation"])
    return web.Response(status=204)


@routes.post("/api/v1/invitations/accept")
@described(
    "Accept an invitation",
    tag="workspaces",
    body=AcceptInvitation,
    ok=Joined,
    errors=(400, 403, 404, 409, 410),
)
async def accept_invitation(request: web.Request) -> web.Response:
    """Join the workspace the link names, with its role, as the signed-in person; then
    work in it with ``X-Crmd-Workspace``. Refused: a damaged link 400
    ``bad_invitation_link``, a forged one 403 ``forged_invitation_link``, a person
    signed in with another address than the invited one 403 ``wrong_person``, a member
    already 409 ``already_member``, and 410 for a link withdrawn
    (``invitation_withdrawn``), used (``invitation_used``) or expired
    (``invitation_expired``)."""
    body = await json_body(request, AcceptInvitation)
    joined = await accept(request, body.token)
    return json_response(Joined(joined.workspace, joined.workspace_name, joined.role))  # type: ignore[arg-type]


async def accept(request: web.Request, token: str) -> invitations.Invitation:
    """Accept, and make the request's caller the person in the workspace joined (the
    audit log's entry goes there)."""
    me = request[CALLER]
    joined = await request.app[INVITATIONS].accept(token, me)
    request[CALLER] = await request.app[ACCESS].for_person(
        me.user, me.email, joined.workspace, me.address
    )
    return joined
