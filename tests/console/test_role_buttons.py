"""The console leaves out what a role may not do: a viewer of a workspace sees its
pages without the forms the guard would refuse them, and its owner sees them all."""

from __future__ import annotations

from typing import Any

from crmd.app import Crmd
from crmd.console.workspace import WORKSPACE_COOKIE
from crmd.workspaces.members import add_member
from tests.console.seed import seed
from tests.console.test_security import signed_in

# (page, a piece of the form or link only someone allowed to use it may see)
GUARDED = (
    ("/campaigns", 'href="/campaigns/new"'),
    ("/campaigns/new", 'value="send"'),
    ("/campaigns/{campaign_id}", 'action="/campaigns/{campaign_id}/test"'),
    ("/flows/{flow_id}", 'action="/flows/{flow_id}/pause"'),
    ("/segments", 'action="/segments/{segment_id}/delete"'),
    ("/segments/{segment_id}", 'action="/segments/{segment_id}/delete"'),
    ("/suppressions", 'method="post" action="/suppressions"'),
    ("/suppressions", 'action="/suppressions/remove"'),
    ("/imports", 'action="/imports"'),
    ("/webhooks", 'action="/webhooks"'),
    ("/webhooks/{webhook_id}", 'action="/webhooks/{webhook_id}/delete"'),
    ("/members", 'action="/members/invite"'),
)


async def pages_show(client: Any, ids: dict[str, str]) -> dict[tuple[str, str], bool]:
    shown = {}
    for path, piece in GUARDED:
        page = await client.get(path.format(**ids))
        assert page.status == 200, path
        shown[(path, piece)] = piece.format(**ids) in await page.text()
    return shown


async def test_a_viewer_sees_no_button_the_guard_would_refuse(
    client: Any, system: Crmd, served: str
) -> None:
    owned = await seed(client, "boss@example.com", "Boss", send=False)
    ids = {
        "campaign_id": owned.campaign_id,
        "flow_id": owned.flow_id,
        "segment_id": owned.segment_id,
        "webhook_id": owned.webhook_id,
    }
    me = await (await client.get("/api/v1/user/me", headers=owned.headers)).json()
    workspace = me["user"]["id"]

    await signed_in(client, "boss@example.com")
    assert all((await pages_show(client, ids)).values())

    await client.post("/sign-out", data={"csrf": await signed_in(client, "watcher@example.com")})
    watcher = await (
        await client.post("/api/v1/user/dev-login", json={"email": "watcher@example.com"})
    ).json()
    await add_member(
        system.web_db, workspace, watcher["user"]["id"], "watcher@example.com", "viewer"
    )
    await signed_in(client, "watcher@example.com")
    client.session.cookie_jar.update_cookies({WORKSPACE_COOKIE: workspace})
    assert "Boss Person 1" in await (await client.get("/customers")).text()
    shown = await pages_show(client, ids)
    assert not any(shown.values()), [k for k, v in shown.items() if v]
