"""Every console page and form, asked by every role of a workspace: refused by the
guard exactly where the permission table says, as the API's walk does for its routes."""

from __future__ import annotations

import html
import re
from typing import Any

from bson import ObjectId

from crmd.app import Crmd
from crmd.console.workspace import WORKSPACE_COOKIE
from crmd.workspaces.members import add_member, create_workspace
from crmd.workspaces.roles import CONSOLE, PERSON, PUBLIC, ROLE_ORDER, ROLES
from tests.console.test_security import signed_in
from tests.workspaces.test_permissions import routes

EXAMPLES = {"action": "pause", "move": "pause", "token": "x"}


def concrete(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: EXAMPLES.get(m[1], str(ObjectId())), path)


async def test_every_console_route_with_every_role(client: Any, system: Crmd) -> None:
    present = routes(system)
    guarded = sorted(
        (route, rule)
        for route, rule in CONSOLE.items()
        if rule.needs not in (PUBLIC, PERSON) and route in present
    )
    assert len(guarded) > 40
    await signed_in(client, "owner@example.com")
    owner = await system.web_db.users.find_one({"email": "owner@example.com"})
    assert owner is not None
    workspace = await create_workspace(
        system.web_db, str(owner["_id"]), "owner@example.com", "Shop"
    )
    for role in ROLE_ORDER[:-1]:
        await signed_in(client, f"{role}@example.com")
        user = await system.web_db.users.find_one({"email": f"{role}@example.com"})
        assert user is not None
        await add_member(system.web_db, workspace, str(user["_id"]), f"{role}@example.com", role)
    for role in ROLE_ORDER:
        csrf = await signed_in(client, f"{role}@example.com")
        client.session.cookie_jar.update_cookies({WORKSPACE_COOKIE: workspace})
        for (method, path), rule in guarded:
            answer = await client.request(
                method,
                concrete(path),
                headers={"X-CSRF-Token": csrf, "Accept": "text/html"},
                data={"csrf": csrf} if method == "POST" else None,
                allow_redirects=False,
            )
            text = html.unescape(await answer.text())
            refused = answer.status == 403 and f"needs the {rule.needs!r} permission" in text
            allowed = rule.needs in ROLES[role]
            assert refused != allowed, (method, path, role, answer.status, text[-300:])
