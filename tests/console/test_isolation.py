"""Two operators, every console route: Bravo, signed in in a browser of her own, sees
none of Alpha's data on any page, cannot open Alpha's customers, imports or campaigns by
their addresses, and cannot act on them. Every console route must appear in a table
below, so a new page fails this test until its isolation check is written."""

from __future__ import annotations

from typing import Any

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
    "/suppressions",
    "/plugins",
    "/system",
}
BY_ID = {  # pages of one thing: Alpha's answer 404 to Bravo
    "/customers/{id}": "customer_id",
    "/imports/{id}": "upload_id",
    "/imports/{id}/events": "upload_id",
    "/imports/{id}/errors.csv": "upload_id",
    "/campaigns/{id}": "campaign_id",
    "/campaigns/{id}/events": "campaign_id",
    "/segments/{id}": "segment_id",
}
ACTIONS = {  # POSTs on one of Alpha's things
    "/campaigns/{id}/{action}": ("send", "pause", "resume", "cancel", "retry-failed"),
    "/campaigns/{id}/test": ("test",),
    "/campaigns/{id}/summary": ("summary",),
    "/segments/{id}": ("save",),
    "/segments/{id}/delete": ("delete",),
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
        | {("GET", path) for path in LISTS | BY_ID.keys()}
        | {("POST", path) for path in ACTIONS.keys() | CALLER_OWN}
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
    bob.allowed.append(r"status of 404 \(Not Found\)")  # the browser says so of a 404 page
    await bob.go(f"/campaigns/{alpha.campaign_id}")
    assert await bob.page.get_by_role("heading", name="Not found").is_visible()
    await bob.shot("alphas-campaign")

    await bob.go("/campaigns")
    for path, actions in ACTIONS.items():
        for action in actions:
            thing = alpha.segment_id if path.startswith("/segments") else alpha.campaign_id
            target = path.replace("{id}", thing).replace("{action}", action)
            answer = await post_as(bob, target, email="bravo@example.com")
            assert answer.status == 404, (target, answer.status)
    alpha_after = await system.db.campaigns.find_one({"name": "Alpha campaign"})
    assert alpha_after == alpha_before, "Bravo's requests changed Alpha's campaign"
    assert await system.db.segments.count_documents({"name": "Alpha segment"}) == 1

    await check_caller_own_posts(page, bob, alpha, bravo, system)


async def check_caller_own_posts(
    alice: Watched, bob: Watched, alpha: Seeded, bravo: Seeded, system: Crmd
) -> None:
    # A campaign on Alpha's segment: not found, nothing created.
    answer = await post_as(
        bob, "/campaigns", name="Stolen", segment=alpha.segment_id, message="x", action="draft"
    )
    assert answer.status == 404
    assert await system.db.campaigns.count_documents({"name": "Stolen"}) == 0
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
