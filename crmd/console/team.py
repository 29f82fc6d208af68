"""The people of a workspace: the header's switcher between one's workspaces, the
members page (roles changed, members removed, invitations made with their link to copy,
and withdrawn; leaving), and the page an invitation's link opens.

The guard (``crmd.workspaces.guard``) refuses what a role may not do; these pages also
leave out the buttons it would refuse. A refused or failed change raises, so the
console's error page says why and the audit log records only what was done."""

from __future__ import annotations

from aiohttp import web

from crmd.auth.requests import caller
from crmd.console.web import CONSOLE, form, render, see_other
from crmd.console.workspace import WORKSPACE_COOKIE, WORKSPACES
from crmd.errors import Forbidden
from crmd.http.keys import ACCESS, CALLER, DATABASE, INVITATIONS
from crmd.workspaces import members
from crmd.workspaces.guard import audited
from crmd.workspaces.roles import MANAGE, OWN, ROLE_ORDER

routes = web.RouteTableDef()
HOME = "/members"
COOKIE_SECONDS = 400 * 86_400
"""The workspace chosen is remembered as long as browsers keep a cookie."""


def _choose(response: web.StreamResponse, request: web.Request, workspace: str) -> None:
    response.set_cookie(
        WORKSPACE_COOKIE,
        workspace,
        max_age=COOKIE_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=request.app[CONSOLE].secure_cookies,
        path="/",
    )


@routes.post("/workspace")
async def switch(request: web.Request) -> web.Response:
    """Work in another of one's workspaces (the header's switcher)."""
    wanted = (await form(request)).get("id", "")[:64]
    # This request's memberships, read from the database as it began.
    found = next((m for m in request.get(WORKSPACES, ()) if m.workspace == wanted), None)
    if found is None:
        raise Forbidden("you are not a member of that workspace", code="not_a_member")
    response = see_other("/", f"Now working in {found.name or wanted} as {found.role}.")
    _choose(response, request, wanted)
    return response


@routes.get("/members")
async def people(request: web.Request) -> web.Response:
    me = caller(request)
    db = request.app[DATABASE]
    manages, owns = MANAGE in me.permissions, OWN in me.permissions
    service = request.app[INVITATIONS]
    pending = await service.pending(me.workspace) if manages else []
    people = await members.members(db, me.workspace)
    owners = sum(1 for m in people if m["role"] == "owner")
    return render(
        request,
        "members.html",
        {
            "members": people,
            "last_owner": me.role == "owner" and owners == 1,
            "pending": [(i, service.link(i)) for i in pending],
            "manages": manages,
            "owns": owns,
            "roles": ROLE_ORDER if owns else ROLE_ORDER[:-1],
            "days": service.days,
            "title": "Members",
        },
        section="Members",
    )


@routes.post("/members/invite")
async def invite(request: web.Request) -> web.Response:
    fields = await form(request)
    made = await request.app[INVITATIONS].invite(
        caller(request), fields.get("email", "")[:320], fields.get("role", "")
    )
    audited(request, made.id)
    said = f"{made.email} is invited as {made.role}: copy their link below"
    if made.emailed_by:
        said += f" (it was also e-mailed through {made.emailed_by})"
    elif made.email_problem:
        said += f" (the e-mail did not go: {made.email_problem})"
    return see_other(HOME, said + ".")


@routes.post("/members/invitations/{invitation}/withdraw")
async def withdraw(request: web.Request) -> web.Response:
    gone = await request.app[INVITATIONS].withdraw(
        caller(request).workspace, request.match_info["invitation"]
    )
    audited(request, request.match_info["invitation"])
    said = f"The invitation of {gone.email} is withdrawn: its link no longer works."
    return see_other(HOME, said)


@routes.post("/members/{user}/role")
async def change_role(request: web.Request) -> web.Response:
    me, user = caller(request), request.match_info["user"]
    role = (await form(request)).get("role", "")
    changed = await members.change_role(
        request.app[DATABASE], me.workspace, user, role, OWN in me.permissions
    )
    audited(request, user)
    return see_other(HOME, f"The role changed from {changed['from']} to {changed['to']}.")


@routes.post("/members/{user}/remove")
async def remove(request: web.Request) -> web.Response:
    """Remove a member (``manage``), or leave (anyone, for themselves)."""
    me, user = caller(request), request.match_info["user"]
    leaving = user == me.user
    if not leaving:
        me.require(MANAGE)
    await members.remove_member(request.app[DATABASE], me.workspace, user, OWN in me.permissions)
    audited(request, user)
    if not leaving:
        return see_other(HOME, "The member is removed.")
    response = see_other("/", "You left the workspace.")
    response.del_cookie(WORKSPACE_COOKIE, path="/")
    return response


@routes.get("/invitations/{token}")
async def invitation(request: web.Request) -> web.Response:
    """What the link invites to, with an Accept button for the invited person (one
    signed in with another address is told so; a link used, withdrawn or expired is
    the error page's 410)."""
    found = await request.app[INVITATIONS].look(request.match_info["token"])
    me = caller(request)
    return render(
        request,
        "invitation.html",
        {
            "invitation": found,
            "token": request.match_info["token"],
            "mine": me.email.strip().lower() == found.email,
            "title": f"Join {found.workspace_name or 'a workspace'}",
        },
    )


@routes.post("/invitations/{token}")
async def accept(request: web.Request) -> web.Response:
    """Join, and work in the workspace joined from now on."""
    me = caller(request)
    joined = await request.app[INVITATIONS].accept(request.match_info["token"], me)
    request[CALLER] = await request.app[ACCESS].for_person(
        me.user, me.email, joined.workspace, me.address
    )  # the audit entry goes to the workspace joined
    audited(request, joined.workspace)
    response = see_other(
        "/", f"You joined {joined.workspace_name or 'the workspace'} as {joined.role}."
    )
    _choose(response, request, joined.workspace)
    return response
