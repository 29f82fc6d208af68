"""A campaign's messages through the dummy vendor, each carrying the recipient's signed
link; one POST of RFC 8058's one-click body, with no cookie and no token, unsubscribes;
the next campaign to the same audience skips them and counts them ``suppressed``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp

from crmd.app import Crmd
from crmd.suppressions.links import LINK_PATH
from tests.campaigns.test_delivery_loop import start_campaign, wait_status
from tests.suppressions.conftest import PEOPLE, Gateway, load_people, suppressed

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


async def campaign(client: Any, auth: Any, name: str, **fields: str) -> dict[str, Any]:
    made = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={"name": name, "message": "Hi {first_name}", "rule": "spend > 0", **fields},
    )
    assert made.status == 201, await made.text()
    body: dict[str, Any] = await made.json()
    return await wait_status(client, auth, body["id"], "completed")


async def test_each_message_carries_its_link_and_one_post_unsubscribes(
    client: Any, auth: Any, delivering: Crmd, gateway: Gateway
):
    await load_people(client, auth)
    first = await campaign(
        client,
        auth,
        "Spring",
        subject="Spring for {first_name|you}",
        html="<p>Dear {name}</p>",
    )
    assert first["subject"] == "Spring for {first_name|you}"
    assert first["html"] == "<p>Dear {name}</p>"
    assert first["stats"]["sent"] == 6 and first["stats"]["suppressed"] == 0
    [message] = gateway.to("p2@example.com")
    base = str(client.make_url("")).rstrip("/")
    assert message.unsubscribe_url.startswith(f"{base}{LINK_PATH}")
    assert message.subject == "Spring for Person2"
    assert message.text == f"Hi Person2\n\nUnsubscribe: {message.unsubscribe_url}"
    assert message.html == (
        f'<p>Dear Person2 Surname</p><p><a href="{message.unsubscribe_url}">Unsubscribe</a></p>'
    )
    assert len({m.unsubscribe_url for m in gateway.sent}) == 6  # one link per recipient
    path = urlsplit(message.unsubscribe_url).path

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as stranger:
        # Opening the link (as mail systems' link checkers do) asks, and changes nothing.
        async with stranger.get(base + path) as page:
            assert page.status == 200 and page.content_type == "text/html"
            html = await page.text()
            assert 'Stop this sender\'s campaigns to <span class="mono">p•••@example.com' in html
            assert '<button type="submit" class="primary">Unsubscribe</button>' in html
            assert page.headers["Referrer-Policy"] == "no-referrer"
        assert await suppressed(client, auth) == {}
        # The mail provider's one-click POST: no cookie, no CSRF token, no Origin.
        async with stranger.post(base + path, data=ONE_CLICK) as done:
            assert done.status == 200
            assert "You are unsubscribed" in await done.text()
        async with stranger.post(base + path, data=ONE_CLICK) as again:
            assert again.status == 200  # twice is once
    listed = await suppressed(client, auth)
    assert list(listed) == ["p2@example.com"]
    assert listed["p2@example.com"]["source"] == "unsubscribe"
    assert listed["p2@example.com"]["campaignId"] == first["id"]

    gateway.sent.clear()
    second = await campaign(client, auth, "Summer")
    assert second["stats"]["suppressed"] == 1 and second["stats"]["sent"] == 5
    assert second["audienceSize"] == 6 and second["deliveryRate"] == round(5 / 6, 4)
    assert gateway.to("p2@example.com") == [] and len(gateway.sent) == 5
    logs = await (
        await client.get(f"/api/v1/campaigns/{second['id']}/logs?status=suppressed", headers=auth)
    ).json()
    assert [(item["status"], item["message"]) for item in logs["items"]] == [("SUPPRESSED", "")]
    assert logs["items"][0]["reason"] == (
        "on the suppression list: followed the unsubscribe link in a message"
    )


async def test_an_old_link_unsubscribes_the_address_its_message_went_to(
    client: Any, auth: Any, delivering: Crmd, gateway: Gateway
):
    """The link names the customer; the campaign's log names the address it was sent
    to. A customer who has moved to another address since keeps the new one."""
    await load_people(client, auth)
    await campaign(client, auth, "Spring")
    [message] = gateway.to("p2@example.com")
    await load_people(client, auth, PEOPLE.replace("p2@example.com", "new2@example.com"))
    path = urlsplit(message.unsubscribe_url).path
    page = await client.get(path)
    assert "p•••@example.com" in await page.text()
    done = await client.post(path, data=ONE_CLICK)
    assert done.status == 200
    assert list(await suppressed(client, auth)) == ["p2@example.com"]


async def test_a_changed_or_cut_link_is_refused_with_a_page_saying_so(
    client: Any, auth: Any, delivering: Crmd, gateway: Gateway
):
    await load_people(client, auth)
    await campaign(client, auth, "Spring")
    path = urlsplit(gateway.to("p3@example.com")[0].unsubscribe_url).path
    token = path.removeprefix(LINK_PATH)
    body, _, mac = token.partition(".")
    middle = len(body) // 2
    swapped = "A" if body[middle] != "A" else "B"
    changed = f"{LINK_PATH}{body[:middle]}{swapped}{body[middle + 1 :]}.{mac}"
    for method in ("GET", "POST"):
        forged = await client.request(method, changed, data=ONE_CLICK)
        assert forged.status == 403, method
        text = await forged.text()
        assert "not made by this server, or was changed" in text and "<h1>Not allowed</h1>" in text
        cut = await client.request(method, path[: len(path) // 2], data=ONE_CLICK)
        assert cut.status == 400, method
        assert "incomplete or damaged" in await cut.text()
    answer = await client.post(changed, data=ONE_CLICK, headers={"Accept": "application/json"})
    assert (await answer.json())["error"]["code"] == "forged_unsubscribe_link"
    assert await suppressed(client, auth) == {}


async def test_a_test_sends_link_names_the_address(
    client: Any, auth: Any, delivering: Crmd, gateway: Gateway
):
    await load_people(client, auth)
    made = await start_campaign(client, auth, "Draft", "Hi {first_name|there}", "spend > 0")
    answer = await client.post(
        f"/api/v1/campaigns/{made['id']}/test", headers=auth, json={"email": "Tester@Example.com"}
    )
    assert answer.status == 200 and (await answer.json())["accepted"]
    [message] = gateway.to("tester@example.com")
    assert message.text == f"Hi there\n\nUnsubscribe: {message.unsubscribe_url}"
    done = await client.post(urlsplit(message.unsubscribe_url).path, data=ONE_CLICK)
    assert done.status == 200
    assert (await suppressed(client, auth))["tester@example.com"]["customerId"] is None
