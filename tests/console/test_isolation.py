"""Two operators, every console route: Bravo, signed in in a browser of her own, sees
none of Alpha's data on any page, cannot open Alpha's customers, imports or campaigns by
their addresses, and cannot act on them. Every console route must appear in a table
below, so a new page fails this test until its isolation check is written."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from crmd.app import Crmd
from crmd.console.web import API_PATHS, STATIC_PREFIX
from tests.console.conftest import Watched
from tests.console.seed import Seeded, seed

OPEN = {
    ("GET", "/sign-in"),
    ("POST", "/sign-in"),
    ("POST", "/sign-out"),
    ("GET", "/sign-in/google"),
    ("GET", "/sign-in/google/callback"),
    ("GET", "/u/{token}"),  # a signed unsubscribe link: checked in tests/suppressions
    ("POST", "/u/{token}"),
    ("GET", "/c/{token}"),  # signed click and open links: checked in tests/tracking
    ("GET", "/o/{token}"),
    ("GET", "/reference"),  # the API's description: the same for everyone
}
LISTS = {  # pages that list the caller's own data: Alpha's must not appear
    "/",
    "/customers",
    "/orders",
    "/imports",
    "/segments",
    "/campaigns",
    "/campaigns/new",
    "/flows",
    "/flows/new",
    "/webhooks",
    "/keys",
    "/suppressions",
    "/plugins",
    "/system",
    "/members",
    "/audit",
}
OWN_FILES = {"/audit.csv"}  # downloads of the caller's own data: Alpha's must not be in them
BY_ID = {  # pages of one thing: Alpha's answer 404 to Bravo
    "/customers/{id}": "customer_id",
    "/customers/{id}/export": "customer_id",
    "/imports/{id}": "upload_id",
    "/imports/{id}/events": "upload_id",
    "/imports/{id}/errors.csv": "upload_id",
    "/campaigns/{id}": "campaign_id",
    "/campaigns/{id}/events": "campaign_id",
    "/segments/{id}": "segment_id",
    "/flows/{id}": "flow_id",
    "/flows/{id}/edit": "flow_id",
    "/webhooks/{id}": "webhook_id",
}
ACTIONS = {  # POSTs on one of Alpha's things
    "/customers/{id}/erase": ("erase",),
    "/campaigns/{id}/{action}": ("send", "pause", "resume", "cancel", "retry-failed"),
    "/campaigns/{id}/test": ("test",),
    "/campaigns/{id}/summary": ("summary",),
    "/segments/{id}": ("save",),
    "/segments/{id}/delete": ("delete",),
    "/flows/{id}/{move}": ("pause", "activate", "archive"),
    "/flows/{id}/edit": ("edit",),
    "/webhooks/{id}/test": ("test",),
    "/webhooks/{id}/enabled": ("enabled",),
    "/webhooks/{id}/delete": ("delete",),
    "/keys/{id}/revoke": ("revoke",),
}
CALLER_OWN = {  # POSTs that read or write only the caller's data: checked one by one below
    "/campaigns",
    "/campaigns/preview",
    "/campaigns/suggest",
    "/segments",
    "/segments/count",
    "/segments/suggest",
    "/imports",
    "/suppressions",
    "/suppressions/remove",
    "/flows/new",
    "/webhooks",
    "/keys",
}

TEAM = {  # a workspace's people: checked one by one in check_team
    ("POST", "/workspace"),
    ("POST", "/members/invite"),
    ("POST", "/members/{user}/role"),
    ("POST", "/members/{user}/remove"),
    ("POST", "/members/invitations/{invitation}/withdraw"),
    ("GET", "/invitations/{token}"),
    ("POST", "/invitations/{token}"),
}


def console_routes(system: Crmd) -> set[tuple[str, str]]:
    found = set()
    for route in system.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if route.method == "HEAD" or path.startswith(API_PATHS) or path.startswith("/static"):
            continue
        found.add((route.method, path))
    return found


def test_every_console_route_has_an_isolation_check(system: Crmd):
    covered = (
        OPEN
        | {("GET", path) for path in LISTS | OWN_FILES | BY_ID.keys()}
        | {("POST", path) for path in ACTIONS.keys() | CALLER_OWN}
        | TEAM
    )
    routes = console_routes(system)
    assert STATIC_PREFIX == "/static/"
    assert routes - covered == set(), "console routes with no isolation check"
    assert covered - routes == set(), "isolation checks of routes that are gone"


async def post_as(page: Watched, path: str, **fields: str) -> Any:
    """A form POST from this browser, with its own CSRF token, as its forms send it."""
    token = await page.page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    return await page.page.request.post(
        page.base + path, form={"csrf": token, **fields}, headers={"Origin": page.base}
    )


async def post_json_as(page: Watched, path: str, body: dict[str, Any]) -> Any:
    token = await page.page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    return await page.page.request.post(
        page.base + path, data=body, headers={"Origin": page.base, "X-CSRF-Token": token}
    )


async def test_two_operators_never_see_or_touch_each_others_data(
    client: Any, page: Watched, second_page: Watched, system: Crmd
):
    alpha = await seed(client, "alpha@example.com", "Alpha")
    bravo = await seed(client, "bravo@example.com", "Bravo")
    alpha_before = await system.db.campaigns.find_one({"name": "Alpha campaign"})
    alpha_flow_before = await system.db.flows.find_one({"name": "Alpha flow"})
    alpha_key = await client.post(
        "/api/v1/keys", json={"name": "Alpha key", "scopes": ["read"]}, headers=alpha.headers
    )
    assert alpha_key.status == 201
    alpha_key_id = (await alpha_key.json())["id"]

    bob = second_page
    await bob.sign_in("bravo@example.com")
    for path in sorted(LISTS):
        answer = await bob.page.goto(bob.base + path)
        assert answer is not None and answer.status == 200, path
        text = await bob.page.content()
        assert "Alpha" not in text and "alpha" not in text, path
        await bob.shot(path.strip("/").replace("/", "-") or "dashboard")
    # Bravo's own data is on her pages (so the check above is not of empty pages).
    await bob.go("/customers")
    assert "Bravo Person 1" in await bob.page.content()
    await bob.go("/campaigns")
    assert "Bravo campaign" in await bob.page.content()

    cookies = {c["name"]: c["value"] for c in await bob.page.context.cookies()}
    session = {"Cookie": f"crmd_session={cookies['crmd_session']}"}
    for path, key in BY_ID.items():
        own = path.replace("{id}", getattr(bravo, key))
        theirs = path.replace("{id}", getattr(alpha, key))
        async with client.get(own, headers=session) as mine:  # (a stream: not read)
            assert mine.status == 200, own
        async with client.get(theirs, headers=session) as answer:
            assert answer.status == 404, theirs
            assert "Alpha" not in await answer.text(), theirs
    for path in sorted(OWN_FILES):
        async with client.get(path, headers=session) as answer:
            text = await answer.text()
            assert answer.status == 200 and "bravo@example.com" in text, path
            assert "alpha" not in text.lower(), path
    bob.allowed.append(r"status of 404 \(Not Found\)")  # the browser says so of a 404 page
    await bob.go(f"/campaigns/{alpha.campaign_id}")
    assert await bob.page.get_by_role("heading", name="Not found").is_visible()
    await bob.shot("alphas-campaign")

    await bob.go("/campaigns")
    for path, actions in ACTIONS.items():
        for action in actions:
            thing = alpha.segment_id if path.startswith("/segments") else alpha.campaign_id
            thing = alpha.flow_id if path.startswith("/flows") else thing
            thing = alpha.webhook_id if path.startswith("/webhooks") else thing
            thing = alpha.customer_id if path.startswith("/customers") else thing
            thing = alpha_key_id if path.startswith("/keys") else thing
            target = path.replace("{id}", thing).replace("{action}", action)
            target = target.replace("{move}", action)
            saving = {"action": "save"} if path.startswith("/flows") else {}
            typed = {"confirm": "alpha1@example.com"}  # Alpha's customer's own address
            answer = await post_as(bob, target, email="bravo@example.com", **saving, **typed)
            assert answer.status == 404, (target, answer.status)
    alpha_after = await system.db.campaigns.find_one({"name": "Alpha campaign"})
    assert alpha_after == alpha_before, "Bravo's requests changed Alpha's campaign"
    alpha_hook = await system.db.webhooks.find_one({"description": "Alpha webhook"})
    assert alpha_hook is not None and alpha_hook["enabled"], (
        "Bravo's requests moved Alpha's webhook"
    )
    alpha_flow = await system.db.flows.find_one({"name": "Alpha flow"})
    assert alpha_flow == alpha_flow_before, "Bravo's requests changed Alpha's flow"
    assert await system.db.segments.count_documents({"name": "Alpha segment"}) == 1
    assert await system.db.customers.count_documents({"_id": alpha.customer_id}) == 1
    alphas_key = await system.db.api_keys.find_one({"name": "Alpha key"})
    assert alphas_key is not None and alphas_key["revokedAt"] is None, "Bravo revoked it"

    await check_team(client, bob, alpha, system)
    await check_caller_own_posts(page, bob, alpha, bravo, system)


async def check_team(client: Any, bob: Watched, alpha: Seeded, system: Crmd) -> None:
    """Bravo can neither switch to Alpha's workspace, change, remove or withdraw
    anything of it, nor use its invitation for another address; what she invites is
    invited to her own workspace."""
    me = await (await client.get("/api/v1/user/me", headers=alpha.headers)).json()
    alphas = me["user"]["id"]
    invited = await client.post(
        f"/api/v1/workspaces/{alphas}/invitations",
        json={"email": "carol@example.com", "role": "admin"},
        headers=alpha.headers,
    )
    invitation = await invited.json()
    token = invitation["link"].rsplit("/", 1)[1]
    bob.allowed.append(r"status of 40[34]")
    for path, fields in (
        ("/workspace", {"id": alphas}),
        (f"/members/{alphas}/role", {"role": "viewer"}),
        (f"/members/{alphas}/remove", {}),
        (f"/members/invitations/{invitation['id']}/withdraw", {}),
        (f"/invitations/{token}", {}),
    ):
        answer = await post_as(bob, path, **fields)
        assert answer.status in (403, 404), (path, answer.status)
        assert "crmd_workspace" not in answer.headers.get("set-cookie", ""), path
    memberships = [m async for m in system.db.memberships.find({"workspaceId": alphas})]
    assert [(m["email"], m["role"]) for m in memberships] == [("alpha@example.com", "owner")]
    pending = await system.db.invitations.find_one({"_id": ObjectId(invitation["id"])})
    assert pending is not None and "withdrawnAt" not in pending and "usedAt" not in pending
    seen = await bob.page.goto(f"{bob.base}/invitations/{token}")
    assert seen is not None and seen.status == 200
    assert not await bob.page.get_by_role("button", name="Accept and join").count()
    await bob.go("/members")
    assert (await post_as(bob, "/members/invite", email="dan@example.com", role="viewer")).ok
    hers = await system.db.invitations.find_one({"email": "dan@example.com"})
    assert hers is not None and hers["workspaceId"] != alphas


async def check_caller_own_posts(
    alice: Watched, bob: Watched, alpha: Seeded, bravo: Seeded, system: Crmd
) -> None:
    # A campaign on Alpha's segment: not found, nothing created.
    answer = await post_as(
        bob, "/campaigns", name="Stolen", segment=alpha.segment_id, message="x", action="draft"
    )
    assert answer.status == 404
    assert await system.db.campaigns.count_documents({"name": "Stolen"}) == 0
    # A flow entered by Alpha's segment: refused as no such segment, nothing created.
    answer = await post_as(
        bob,
        "/flows/new",
        name="Stolen flow",
        trigger="segment",
        triggerSegment=alpha.segment_id,
        **{"step-0-kind": "exit"},
        action="draft",
    )
    assert answer.status == 200 and "no segment" in await answer.text()
    assert await system.db.flows.count_documents({"name": "Stolen flow"}) == 0
    # A webhook Bravo makes is Bravo's, not Alpha's.
    fields = {"url": "http://127.0.0.1:9/b", "event-import.done": "on"}
    made = await post_as(bob, "/webhooks", **fields)
    assert made.status == 200, made.status
    hers = await system.db.webhooks.find_one({"url": "http://127.0.0.1:9/b"})
    alphas = await system.db.webhooks.find_one({"description": "Alpha webhook"})
    assert hers is not None and alphas is not None and hers["userId"] != alphas["userId"]
    # A key Bravo makes is her workspace's, and her keys page lists no other.
    made = await post_as(bob, "/keys", once="bravo-1", name="Bravo key", **{"scope-read": "on"})
    assert made.status == 200 and "Your new key, Bravo key" in await made.text()
    hers = await system.db.api_keys.find_one({"name": "Bravo key"})
    alphas = await system.db.api_keys.find_one({"name": "Alpha key"})
    assert hers is not None and alphas is not None and hers["userId"] != alphas["userId"]
    # Counting and previewing see only Bravo's customers.
    counted = await (await post_json_as(bob, "/segments/count", {"rule": "spend > 0"})).json()
    assert counted["audienceSize"] == 3
    assert all("Bravo" in s["name"] for s in counted["sample"])
    shown = await (
        await post_json_as(bob, "/campaigns/preview", {"message": "{name}", "rule": "spend > 0"})
    ).json()
    assert shown["previews"] and all("Bravo" in p["text"] for p in shown["previews"])
    shown = await (
        await post_json_as(
            bob, "/campaigns/preview", {"message": "{name}", "segment": alpha.segment_id}
        )
    ).json()
    assert "Alpha" not in str(shown)
    answer = await post_as(bob, "/segments", action="count", rule="spend > 0")
    assert answer.status == 200 and "Alpha" not in await answer.text()
    # Suggestions read no customer data; what they answer carries none of Alpha's.
    for path, body in (
        ("/segments/suggest", {"text": "customers who spent a lot"}),
        ("/campaigns/suggest", {"objective": "win back", "segment": alpha.segment_id}),
    ):
        answer = await post_json_as(bob, path, body)
        assert "Alpha" not in await answer.text(), path
    # What Bravo saves and uploads is hers: Alpha's pages do not show it.
    assert (await post_as(bob, "/segments", name="Bravo only", rule="visits > 1")).ok
    upload = await bob.page.request.post(
        bob.base + "/imports",
        multipart={
            "csrf": await bob.page.locator('meta[name="csrf-token"]').get_attribute("content")
            or "",
            "kind": "customers",
            "file": {
                "name": "b.csv",
                "mimeType": "text/csv",
                "buffer": b"customer_external_id,name,email\nBZ,Bravo Zed,bz@example.com\n",
            },
        },
        headers={"Origin": bob.base},
    )
    assert upload.ok
    # Bravo can neither remove Alpha's suppressed address nor see it; hers stays hers.
    assert (await post_as(bob, "/suppressions/remove", email="alpha-gone@example.com")).ok
    assert await system.db.suppressions.count_documents({"email": "alpha-gone@example.com"}) == 1
    assert (await post_as(bob, "/suppressions", email="bravo-new@example.com")).ok
    await alice.sign_in("alpha@example.com")
    await alice.go("/suppressions")
    assert "alpha-gone@example.com" in await alice.page.content()
    for path in ("/segments", "/imports", "/suppressions", "/customers"):
        await alice.go(path)
        text = await alice.page.content()
        assert "Bravo" not in text and "bravo" not in text and "b.csv" not in text, path
    assert "Alpha Person 1" in text
