"""The console's caller: the signed-in person in the workspace they chose with the
header's switcher (a cookie), and the workspaces the switcher offers."""

from __future__ import annotations

from aiohttp import web

from crmd.http.keys import ACCESS, CALLER, DATABASE
from crmd.workspaces.members import Membership, memberships_of

WORKSPACES: web.RequestKey[list[Membership]] = web.RequestKey("workspaces")
"""The signed-in person's workspaces, for the header's switcher."""
WORKSPACE_COOKIE = "crmd_workspace"
"""The workspace the console works in (the header's switcher sets it)."""


async def place(request: web.Request, user: str, email: str) -> None:
    """Set the request's caller: the person in the workspace their cookie names, or,
    when that choice no longer holds (they were removed), in their default one; one
    read of their memberships serves that and the header's switcher."""
    joined = await memberships_of(request.app[DATABASE], user)
    chosen = request.cookies.get(WORKSPACE_COOKIE, "")
    request[CALLER] = request.app[ACCESS].among(joined, user, email, chosen, request.remote or "")
    request[WORKSPACES] = joined
