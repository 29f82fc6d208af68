"""Two users, every route of the API: neither sees, counts, changes or deletes the
other's data. Every /api/ route must appear in ISOLATION or PUBLIC below, so a new
route fails this test until its isolation check is written."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns import jobs
from crmd.http.keys import DEAD_LETTERS
from crmd.streams.worker import dead_letter_stream
from tests.ingest.conftest import CUSTOMERS, ORDERS, upload, wait_done

Headers = dict[str, str]
Check = Callable[[Any, Headers, Headers, dict[str, Any], dict[str, Any]], Awaitable[None]]

PUBLIC = {
    ("POST", "/api/v1/deliveryReceipt/{vendor}"),  # signed by the vendor instead
    ("POST", "/api/v1/deliveryReceipt"),
    ("POST", "/api/v1/user/oauth"),
    ("GET", "/api/v1/user/oauth"),
    ("POST", "/api/v1/user/dev-login"),
    ("POST", "/api/receipt"),  # the original's path of the signed receipt callback
    ("GET", "/api/v1/openapi.json"),  # the API's description: the same for everyone
}


async def me_is_each_users_own(
    client: Any, alice: Headers, bob: Headers, alice_user: dict[str, Any], bob_user: dict[str, Any]
) -> None:
    seen_by_alice = await (await client.get("/api/v1/user/me", headers=alice)).json()
    seen_by_bob = await (await client.get("/api/v1/user/me", headers=bob)).json()
    assert seen_by_alice["user"] == alice_user
    assert seen_by_bob["user"] == bob_user


async def uploads_stay_with_their_owner(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    """Alice uploads by both paths; Bob sees none of it anywhere."""
    for path in ("/api/v1/upload/customers", "/api/v1/uploads/orders"):
        kind = path.rsplit("/", 1)[1]
        text = CUSTOMERS if kind == "customers" else ORDERS
        answer = await (
            await upload(client, alice, kind, text, path=path.rsplit("/", 1)[0] + "/")
        ).json()
        await wait_done(client, alice, answer["uploadId"])
    for path in ("/api/v1/uploads", "/api/v1/customers", "/api/v1/orders"):
        mine = await (await client.get(path, headers=alice)).json()
        theirs = await (await client.get(path, headers=bob)).json()
        assert mine["total"] > 0 and mine["items"], path
        assert theirs == {
            "items": [],
            "total": 0,
            **({"cursor": None} if "cursor" in theirs else {}),
        }, path


async def posted_records_stay_with_their_owner(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    """Alice posts a customer and an order; Bob neither sees, reads nor changes them."""
    posted = [
        ("customers", {"externalId": "ISO1", "name": "Iso", "email": "iso@example.com"}),
        ("orders", {"customer_external_id": "ISO1", "amount": 5, "orderDate": "2026-01-01"}),
    ]
    for kind, item in posted:
        response = await client.post(f"/api/v1/{kind}", json=item, headers=alice)
        assert response.status == 202, kind
        await wait_done(client, alice, (await response.json())["uploadId"])
    listed = await (await client.get("/api/v1/customers", headers=alice)).json()
    customer = next(c for c in listed["items"] if c["customer_external_id"] == "ISO1")
    for path in (f"/api/v1/customers/{customer['id']}", "/api/v1/customers/ISO1"):
        mine = await (await client.get(path, headers=alice)).json()
        assert mine["orders"]["total"] == 1, path
        assert (await client.get(path, headers=bob)).status == 404, path
        patched = await client.patch(path, json={"name": "Bob's"}, headers=bob)
        assert patched.status == 404, path
    for path in ("/api/v1/customers", "/api/v1/orders"):
        theirs = await (await client.get(path, headers=bob)).json()
        assert theirs["items"] == [], path
    # The same Idempotency-Key is each user's own.
    key = {"Idempotency-Key": "iso-key"}
    item = {"externalId": "ISO2", "name": "Iso", "email": "iso2@example.com"}
    answers = []
    for who in (alice, bob):
        response = await client.post("/api/v1/customers", json=item, headers={**who, **key})
        assert response.status == 202
        answers.append((await response.json())["uploadId"])
    assert answers[0] != answers[1]
    assert (await client.get(f"/api/v1/uploads/{answers[0]}", headers=bob)).status == 404


async def data_rights_stay_with_the_owner(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    """Bob can neither export nor erase Alice's customer (by crmd id or by her own id),
    and his attempts leave it whole; Alice can do both."""
    item = {"externalId": "ISO-R", "name": "Iso Rights", "email": "iso-r@example.com"}
    response = await client.post("/api/v1/customers", json=item, headers=alice)
    await wait_done(client, alice, (await response.json())["uploadId"])
    listed = await (await client.get("/api/v1/customers", headers=alice)).json()
    customer = next(c for c in listed["items"] if c["customer_external_id"] == "ISO-R")
    for key in (customer["id"], "ISO-R"):
        path = f"/api/v1/customers/{key}"
        assert (await client.get(f"{path}/export", headers=bob)).status == 404, key
        assert (await client.delete(path, headers=bob)).status == 404, key
    exported = await client.get(f"/api/v1/customers/{customer['id']}/export", headers=alice)
    assert (await exported.json())["customer"]["email"] == "iso-r@example.com"
    assert (await client.delete("/api/v1/customers/ISO-R", headers=alice)).status == 200
    assert (await client.get("/api/v1/customers/ISO-R", headers=alice)).status == 404


async def one_upload_is_404_to_others(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    answer = await (await upload(client, alice, "customers", CUSTOMERS)).json()
    job = f"/api/v1/uploads/{answer['uploadId']}"
    for path in (job, job + "/errors.csv"):
        assert (await client.get(path, headers=alice)).status == 200, path
        response = await client.get(path, headers=bob)
        assert response.status == 404, path
        assert (await response.json())["error"]["code"] == "not_found"


async def segments_stay_with_their_owner(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    ids = []
    for path in ("/api/v1/segment", "/api/v1/segments", "/api/v1/api/v1/segment"):
        made = await client.post(path, headers=alice, json={"name": "A", "rule": "spend > 1"})
        assert made.status == 201
        ids.append((await made.json())["id"])
    for path in ("/api/v1/segment", "/api/v1/segments"):
        assert (await (await client.get(path, headers=bob)).json())["total"] == 0
        assert (await (await client.get(path, headers=alice)).json())["total"] == 3
    for base in ("/api/v1/segment/", "/api/v1/segments/"):
        url = base + ids[0]
        assert (await client.get(url, headers=bob)).status == 404
        assert (await client.put(url, headers=bob, json={"rule": "spend > 0"})).status == 404
        assert (await client.delete(url, headers=bob)).status == 404
    mine = await (await client.get(f"/api/v1/segment/{ids[0]}", headers=alice)).json()
    assert mine["rule"] == "spend > 1"


async def audiences_count_only_own_customers(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    answer = await (await upload(client, alice, "customers", CUSTOMERS)).json()
    await wait_done(client, alice, answer["uploadId"])
    rule = {"rule": "spend >= 0"}
    for who, expected in ((alice, 2), (bob, 0)):
        for path in ("/api/v1/segment/preview", "/api/v1/segments/preview"):
            body = await (await client.post(path, headers=who, json=rule)).json()
            assert body["audienceSize"] == expected
        body = await (await client.get("/api/v1/audience/preview", params=rule, headers=who)).json()
        assert len(body["audienceDetails"]["audienceIds"]) == expected
        listed = await (await client.get("/api/v1/customers", params=rule, headers=who)).json()
        assert listed["total"] == expected


async def campaigns_stay_with_their_owner(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    answer = await (await upload(client, alice, "customers", CUSTOMERS)).json()
    await wait_done(client, alice, answer["uploadId"])
    body = {"name": "c", "message": "Hi {first_name}", "rule": "spend >= 0"}
    made = [
        await client.post("/api/v1/campaigns", headers=alice, json=body),
        await client.post("/api/v1/compaigns", headers=alice, json=body),
        await client.post("/api/v1/compaign", headers=alice, json={"compaignDetails": body}),
    ]
    assert [m.status for m in made] == [201, 201, 201], [await m.text() for m in made]
    campaign = (await made[0].json())["id"]
    for path in (
        "/api/v1/campaigns",
        "/api/v1/compaigns/getCompaign",
        "/api/v1/compaign/getCompaigns",
    ):
        assert (await (await client.get(path, headers=alice)).json())["total"] == 3
        assert (await (await client.get(path, headers=bob)).json())["total"] == 0
    base = f"/api/v1/campaigns/{campaign}"
    assert (await client.get(base, headers=bob)).status == 404
    assert (await client.get(base + "/logs", headers=bob)).status == 404
    for action in ("send", "pause", "resume", "cancel", "retry-failed"):
        assert (await client.post(f"{base}/{action}", headers=bob)).status == 404, action
    test = await client.post(base + "/test", headers=bob, json={"email": "x@y.io"})
    assert test.status == 404
    summary = await (await client.get("/api/v1/dashboard-summary", headers=bob)).json()
    assert summary == {"customers": 0, "orders": 0, "campaigns": 0, "messages": {}}
    mine = await (await client.get("/api/v1/dashboard-summary", headers=alice)).json()
    assert mine["customers"] == 2 and mine["campaigns"] == 3


async def flows_stay_with_their_owner(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    body = {"name": "f", "trigger": {"event": "signup"}, "steps": [{"wait": "1h"}]}
    made = await client.post("/api/v1/flows", headers=alice, json=body)
    assert made.status == 201, await made.text()
    base = f"/api/v1/flows/{(await made.json())['id']}"
    assert (await (await client.get("/api/v1/flows", headers=alice)).json())["total"] == 1
    assert (await (await client.get("/api/v1/flows", headers=bob)).json())["total"] == 0
    for method, path in (
        ("GET", base),
        ("GET", base + "/versions/1"),
        ("PATCH", base),
        ("POST", base + "/activate"),
        ("POST", base + "/pause"),
        ("DELETE", base),
    ):
        answer = await client.request(method, path, headers=bob, json={"name": "x"})
        assert answer.status == 404, (method, path)
    mine = await (await client.get(base, headers=alice)).json()
    assert mine["name"] == "f" and mine["status"] == "draft"


async def ai_reads_only_the_users_own_data(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    answer = await (await upload(client, alice, "customers", CUSTOMERS)).json()
    await wait_done(client, alice, answer["uploadId"])
    for who, expected in ((alice, 2), (bob, 0)):
        rule = await (
            await client.post("/api/v1/ai/rule", headers=who, json={"text": "spent over 1"})
        ).json()
        assert rule["audienceSize"] == expected
    made = await client.post(
        "/api/v1/campaigns",
        headers=alice,
        json={"name": "c", "message": "Hi", "rule": "spend > 1", "draft": True},
    )
    campaign = (await made.json())["id"]
    assert (await client.get(f"/api/v1/campaigns/{campaign}/summary", headers=alice)).status == 200
    assert (await client.get(f"/api/v1/campaigns/{campaign}/summary", headers=bob)).status == 404
    # Messages and tags read no stored data: both users simply get an answer.
    for who in (alice, bob):
        assert (await client.post("/api/v1/ai/messages", headers=who, json={})).status == 200
        assert (
            await client.post("/api/v1/ai/tags", headers=who, json={"rule": "spend > 1"})
        ).status == 200
        assert (
            await client.get("/api/v1/generateMessage", headers=who, params={"name": "x"})
        ).status == 200


async def dead_letters_stay_with_their_owner(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    """A dispatch job of Alice's that died is listed for her, never for Bob."""
    dead_letters = client.app[DEAD_LETTERS]
    job = jobs.encode(jobs.DispatchJob("send", str(ObjectId()), alice_user["id"]))
    stream = dead_letter_stream(dead_letters.streams.dispatch)
    await dead_letters.redis.xadd(stream, {jobs.FIELD: job, b"_dead_error": b"E: x"})
    mine = await (await client.get("/api/v1/dead-letters", headers=alice)).json()
    theirs = await (await client.get("/api/v1/dead-letters", headers=bob)).json()
    assert [item["kind"] for item in mine["items"]] == ["dispatch job"]
    assert theirs == {"items": [], "complete": True}


async def suppressions_stay_with_their_owner(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    url = "/api/v1/suppressions"
    assert (await client.post(url, headers=alice, json={"email": "x@example.com"})).status == 201
    csv = {**alice, "Content-Type": "text/csv"}
    imported = await client.post(url, data=b"email\ny@example.com\n", headers=csv)
    assert (await imported.json())["added"] == 1
    assert (await (await client.get(url, headers=bob)).json())["total"] == 0
    assert (await (await client.get(url, headers=alice)).json())["total"] == 2
    one = {"email": "x@example.com"}
    assert (await (await client.get(url, headers=bob, params=one)).json())["items"] == []
    assert (await client.delete(f"{url}/x@example.com", headers=bob)).status == 404
    everyones = await client.delete(url, headers=bob, params={"source": "operator"})
    assert (await everyones.json())["removed"] == 0
    assert (await (await client.get(url, headers=alice, params=one)).json())["items"]


async def events_name_only_the_users_own_customers(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    job = await (await upload(client, alice, "customers", CUSTOMERS)).json()
    await wait_done(client, alice, job["uploadId"])
    url = "/api/v1/events"
    mine = await client.post(url, headers=alice, json={"customer": "C1", "name": "x", "id": "e1"})
    answer = await mine.json()
    assert mine.status == 202, answer
    crmd_id = answer["items"][0]["customerId"]
    for name in ("C1", "asha@example.com", crmd_id):  # alice's, by each way of naming
        theirs = await client.post(url, headers=bob, json={"customer": name, "name": "x"})
        assert theirs.status == 422
        assert (await theirs.json())["error"]["details"][0]["field"] == "customer"


async def messages_go_only_to_the_users_own_customers(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    job = await (await upload(client, alice, "customers", CUSTOMERS)).json()
    await wait_done(client, alice, job["uploadId"])
    url = "/api/v1/messages"
    mine = await client.post(url, headers=alice, json={"customer": "C1", "message": "Hi"})
    answer = await mine.json()
    assert mine.status == 202, answer
    for name in ("C1", "asha@example.com", answer["customerId"]):
        theirs = await client.post(url, headers=bob, json={"customer": name, "message": "Hi"})
        assert theirs.status == 422
        assert (await theirs.json())["error"]["details"]["field"] == "customer"


async def webhooks_stay_with_their_owner(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    url = "/api/v1/webhooks"
    hook = {"url": "http://127.0.0.1:9/alice", "events": ["import.done"]}
    made = await (await client.post(url, headers=alice, json=hook)).json()
    one = f"{url}/{made['id']}"
    assert (await (await client.get(url, headers=bob)).json())["total"] == 0
    for method, path, body in (
        ("GET", one, None),
        ("PATCH", one, {"url": "http://127.0.0.1:9/bob"}),
        ("POST", f"{one}/test", None),
        ("GET", f"{one}/deliveries", None),
        ("DELETE", one, None),
    ):
        assert (await client.request(method, path, headers=bob, json=body)).status == 404, path
    theirs = await (await client.post(url, headers=bob, json=hook)).json()
    assert (await client.get(f"{url}/{theirs['id']}", headers=alice)).status == 404
    still = await (await client.get(one, headers=alice)).json()
    assert still["url"] == "http://127.0.0.1:9/alice"
    assert (await (await client.get(f"{one}/deliveries", headers=alice)).json())["items"] == []
    assert (await (await client.get(url, headers=alice)).json())["total"] == 1


async def keys_stay_with_their_workspace(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    """Bob neither lists nor revokes Alice's keys, and his own key reads his workspace
    alone, whichever workspace it names."""
    url = "/api/v1/keys"
    made = await client.post(url, json={"name": "alice's", "scopes": ["read"]}, headers=alice)
    assert made.status == 201
    alices = await made.json()
    alices_key = {"Authorization": f"Bearer {alices['key']}"}
    assert (await (await client.get(url, headers=bob)).json()) == {"items": [], "total": 0}
    assert (await client.delete(f"{url}/{alices['id']}", headers=bob)).status == 404
    assert (await client.get("/api/v1/keys", headers=alices_key)).status == 403
    assert (await client.get("/api/v1/customers", headers=alices_key)).status == 200
    theirs = await (
        await client.post(url, json={"name": "bob's", "scopes": ["read"]}, headers=bob)
    ).json()
    bobs_key = {"Authorization": f"Bearer {theirs['key']}"}
    listed = await (await client.get(url, headers=alice)).json()
    assert [k["id"] for k in listed["items"]] == [alices["id"]]
    job = await (await upload(client, alice, "customers", CUSTOMERS)).json()
    await wait_done(client, alice, job["uploadId"])
    mine = await (await client.get("/api/v1/customers", headers=alices_key)).json()
    seen = await (await client.get("/api/v1/customers", headers=bobs_key)).json()
    assert mine["total"] > 0 and seen["total"] == 0 and seen["items"] == []
    named = {**bobs_key, "X-Crmd-Workspace": alice_user["id"]}
    refused = await client.get("/api/v1/customers", headers=named)
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "key_workspace"
    assert (await client.delete(f"{url}/{theirs['id']}", headers=alice)).status == 404
    assert (await client.get("/api/v1/customers", headers=bobs_key)).status == 200


async def workspaces_stay_with_their_members(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    """Each sees only the workspaces they belong to; Bob can neither list, change nor
    remove Alice's workspace's members, even naming it by id."""
    made = await client.post("/api/v1/workspaces", json={"name": "Alice's shop"}, headers=alice)
    assert made.status == 201
    shop = (await made.json())["id"]
    mine = {
        w["id"]
        for w in (await (await client.get("/api/v1/workspaces", headers=alice)).json())["items"]
    }
    theirs = {
        w["id"]
        for w in (await (await client.get("/api/v1/workspaces", headers=bob)).json())["items"]
    }
    assert shop in mine and alice_user["id"] in mine
    assert theirs == {bob_user["id"]}
    for workspace in (shop, alice_user["id"]):
        base = f"/api/v1/workspaces/{workspace}/members"
        for method, path, body in (
            ("GET", base, None),
            ("PATCH", f"{base}/{alice_user['id']}", {"role": "viewer"}),
            ("DELETE", f"{base}/{alice_user['id']}", None),
        ):
            answer = await client.request(method, path, json=body, headers=bob)
            assert answer.status == 403, (method, path)
            assert (await answer.json())["error"]["code"] == "not_a_member"
        listed = await (await client.get(base, headers=alice)).json()
        assert [m["email"] for m in listed["items"]] == ["alice@example.com"]
        assert listed["items"][0]["role"] == "owner"


async def audit_entries_stay_in_their_workspace(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    """Alice's actions are in her log; Bob's log has none of them, however he filters,
    and naming her workspace is refused."""
    made = await client.post(
        "/api/v1/segments", headers=alice, json={"name": "A", "rule": "spend > 1"}
    )
    assert made.status == 201
    segment = (await made.json())["id"]
    mine = await (await client.get("/api/v1/audit", headers=alice)).json()
    assert [(e["action"], e["objectId"]) for e in mine["items"]] == [("segment.saved", segment)]
    for query in ("", f"?objectId={segment}", f"?who={alice_user['id']}", "?action=segment."):
        theirs = await (await client.get(f"/api/v1/audit{query}", headers=bob)).json()
        assert theirs == {"items": [], "cursor": None}, query
        text = await (await client.get(f"/api/v1/audit.csv{query}", headers=bob)).text()
        assert text == "at,action,outcome,by,from,objectId,fields,reason\n", query
    mine_csv = await (await client.get("/api/v1/audit.csv", headers=alice)).text()
    assert segment in mine_csv
    there = {**bob, "X-Crmd-Workspace": alice_user["id"]}
    for path in ("/api/v1/audit", "/api/v1/audit.csv"):
        answer = await client.get(path, headers=there)
        assert answer.status == 403, path
        assert (await answer.json())["error"]["code"] == "not_a_member"


async def invitations_stay_with_their_workspace(
    client: Any, alice: Headers, bob: Headers, alice_user: Any, bob_user: Any
) -> None:
    """Bob can neither list, make nor withdraw invitations of Alice's workspace, even
    naming it, nor withdraw hers through his own; her invitation's link, for another
    address, does not let him in."""
    mine, theirs = alice_user["id"], bob_user["id"]
    body = {"email": "carol@example.com", "role": "viewer"}
    made = await client.post(f"/api/v1/workspaces/{mine}/invitations", json=body, headers=alice)
    assert made.status == 201
    invitation = await made.json()
    base = f"/api/v1/workspaces/{mine}/invitations"
    for method, path, sent in (
        ("GET", base, None),
        ("POST", base, {"email": "bob2@example.com", "role": "owner"}),
        ("DELETE", f"{base}/{invitation['id']}", None),
    ):
        answer = await client.request(method, path, json=sent, headers=bob)
        assert answer.status == 403, (method, path)
        assert (await answer.json())["error"]["code"] == "not_a_member"
    own = f"/api/v1/workspaces/{theirs}/invitations"
    assert (await (await client.get(own, headers=bob)).json())["total"] == 0
    assert (await client.delete(f"{own}/{invitation['id']}", headers=bob)).status == 404
    token = invitation["link"].rsplit("/", 1)[1]
    taken = await client.post("/api/v1/invitations/accept", json={"token": token}, headers=bob)
    assert taken.status == 403
    assert (await taken.json())["error"]["code"] == "wrong_person"
    workspaces = await (await client.get("/api/v1/workspaces", headers=bob)).json()
    assert [w["id"] for w in workspaces["items"]] == [theirs]
    listed = await (await client.get(base, headers=alice)).json()
    assert [i["id"] for i in listed["items"]] == [invitation["id"]]


ISOLATION: dict[tuple[str, str], Check] = {
    ("GET", "/api/v1/workspaces"): workspaces_stay_with_their_members,
    ("POST", "/api/v1/workspaces"): workspaces_stay_with_their_members,
    ("GET", "/api/v1/workspaces/{id}/members"): workspaces_stay_with_their_members,
    ("PATCH", "/api/v1/workspaces/{id}/members/{user}"): workspaces_stay_with_their_members,
    ("DELETE", "/api/v1/workspaces/{id}/members/{user}"): workspaces_stay_with_their_members,
    ("GET", "/api/v1/workspaces/{id}/invitations"): invitations_stay_with_their_workspace,
    ("POST", "/api/v1/workspaces/{id}/invitations"): invitations_stay_with_their_workspace,
    (
        "DELETE",
        "/api/v1/workspaces/{id}/invitations/{invitation}",
    ): invitations_stay_with_their_workspace,
    ("POST", "/api/v1/invitations/accept"): invitations_stay_with_their_workspace,
    ("POST", "/api/v1/events"): events_name_only_the_users_own_customers,
    ("POST", "/api/v1/messages"): messages_go_only_to_the_users_own_customers,
    ("POST", "/api/v1/ai/messages"): ai_reads_only_the_users_own_data,
    ("POST", "/api/v1/ai/rule"): ai_reads_only_the_users_own_data,
    ("POST", "/api/v1/ai/tags"): ai_reads_only_the_users_own_data,
    ("GET", "/api/v1/generateMessage"): ai_reads_only_the_users_own_data,
    ("POST", "/api/generateMessage"): ai_reads_only_the_users_own_data,
    ("GET", "/api/v1/campaigns/{id}/summary"): ai_reads_only_the_users_own_data,
    ("POST", "/api/v1/campaigns"): campaigns_stay_with_their_owner,
    ("POST", "/api/v1/compaigns"): campaigns_stay_with_their_owner,
    ("POST", "/api/v1/compaign"): campaigns_stay_with_their_owner,
    ("GET", "/api/v1/campaigns"): campaigns_stay_with_their_owner,
    ("GET", "/api/v1/compaigns/getCompaign"): campaigns_stay_with_their_owner,
    ("GET", "/api/v1/compaign/getCompaigns"): campaigns_stay_with_their_owner,
    ("GET", "/api/v1/campaigns/{id}"): campaigns_stay_with_their_owner,
    ("POST", "/api/v1/flows"): flows_stay_with_their_owner,
    ("GET", "/api/v1/flows"): flows_stay_with_their_owner,
    ("GET", "/api/v1/flows/{id}"): flows_stay_with_their_owner,
    ("GET", "/api/v1/flows/{id}/versions/{n}"): flows_stay_with_their_owner,
    ("PATCH", "/api/v1/flows/{id}"): flows_stay_with_their_owner,
    ("POST", "/api/v1/flows/{id}/activate"): flows_stay_with_their_owner,
    ("POST", "/api/v1/flows/{id}/pause"): flows_stay_with_their_owner,
    ("DELETE", "/api/v1/flows/{id}"): flows_stay_with_their_owner,
    ("GET", "/api/v1/campaigns/{id}/logs"): campaigns_stay_with_their_owner,
    ("POST", "/api/v1/campaigns/{id}/send"): campaigns_stay_with_their_owner,
    ("POST", "/api/v1/campaigns/{id}/pause"): campaigns_stay_with_their_owner,
    ("POST", "/api/v1/campaigns/{id}/resume"): campaigns_stay_with_their_owner,
    ("POST", "/api/v1/campaigns/{id}/cancel"): campaigns_stay_with_their_owner,
    ("POST", "/api/v1/campaigns/{id}/retry-failed"): campaigns_stay_with_their_owner,
    ("POST", "/api/v1/campaigns/{id}/test"): campaigns_stay_with_their_owner,
    ("GET", "/api/v1/dashboard-summary"): campaigns_stay_with_their_owner,
    ("GET", "/api/v1/dead-letters"): dead_letters_stay_with_their_owner,
    ("POST", "/api/v1/segment"): segments_stay_with_their_owner,
    ("POST", "/api/v1/api/v1/segment"): segments_stay_with_their_owner,
    ("POST", "/api/v1/segments"): segments_stay_with_their_owner,
    ("GET", "/api/v1/segment"): segments_stay_with_their_owner,
    ("GET", "/api/v1/segments"): segments_stay_with_their_owner,
    ("GET", "/api/v1/segment/{id}"): segments_stay_with_their_owner,
    ("GET", "/api/v1/segments/{id}"): segments_stay_with_their_owner,
    ("PUT", "/api/v1/segment/{id}"): segments_stay_with_their_owner,
    ("PUT", "/api/v1/segments/{id}"): segments_stay_with_their_owner,
    ("DELETE", "/api/v1/segment/{id}"): segments_stay_with_their_owner,
    ("DELETE", "/api/v1/segments/{id}"): segments_stay_with_their_owner,
    ("POST", "/api/v1/segment/preview"): audiences_count_only_own_customers,
    ("POST", "/api/v1/segments/preview"): audiences_count_only_own_customers,
    ("GET", "/api/v1/audience/preview"): audiences_count_only_own_customers,
    ("GET", "/api/v1/user/me"): me_is_each_users_own,
    ("POST", "/api/v1/upload/{kind}"): uploads_stay_with_their_owner,
    ("POST", "/api/v1/uploads/customers"): uploads_stay_with_their_owner,
    ("POST", "/api/v1/uploads/orders"): uploads_stay_with_their_owner,
    ("GET", "/api/v1/uploads"): uploads_stay_with_their_owner,
    ("GET", "/api/v1/customers"): uploads_stay_with_their_owner,
    ("GET", "/api/v1/orders"): uploads_stay_with_their_owner,
    ("POST", "/api/v1/customers"): posted_records_stay_with_their_owner,
    ("POST", "/api/v1/orders"): posted_records_stay_with_their_owner,
    ("GET", "/api/v1/customers/{id}"): posted_records_stay_with_their_owner,
    ("PATCH", "/api/v1/customers/{id}"): posted_records_stay_with_their_owner,
    ("DELETE", "/api/v1/customers/{id}"): data_rights_stay_with_the_owner,
    ("GET", "/api/v1/customers/{id}/export"): data_rights_stay_with_the_owner,
    ("GET", "/api/v1/uploads/{id}"): one_upload_is_404_to_others,
    ("GET", "/api/v1/uploads/{id}/errors.csv"): one_upload_is_404_to_others,
    ("GET", "/api/v1/suppressions"): suppressions_stay_with_their_owner,
    ("POST", "/api/v1/suppressions"): suppressions_stay_with_their_owner,
    ("DELETE", "/api/v1/suppressions"): suppressions_stay_with_their_owner,
    ("DELETE", "/api/v1/suppressions/{email}"): suppressions_stay_with_their_owner,
    ("POST", "/api/v1/webhooks"): webhooks_stay_with_their_owner,
    ("GET", "/api/v1/webhooks"): webhooks_stay_with_their_owner,
    ("GET", "/api/v1/webhooks/{id}"): webhooks_stay_with_their_owner,
    ("PATCH", "/api/v1/webhooks/{id}"): webhooks_stay_with_their_owner,
    ("DELETE", "/api/v1/webhooks/{id}"): webhooks_stay_with_their_owner,
    ("POST", "/api/v1/webhooks/{id}/test"): webhooks_stay_with_their_owner,
    ("GET", "/api/v1/webhooks/{id}/deliveries"): webhooks_stay_with_their_owner,
    ("POST", "/api/v1/keys"): keys_stay_with_their_workspace,
    ("GET", "/api/v1/keys"): keys_stay_with_their_workspace,
    ("DELETE", "/api/v1/keys/{id}"): keys_stay_with_their_workspace,
    ("GET", "/api/v1/audit"): audit_entries_stay_in_their_workspace,
    ("GET", "/api/v1/audit.csv"): audit_entries_stay_in_their_workspace,
}


def api_routes(system: Crmd) -> set[tuple[str, str]]:
    app = system.app
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and route.method != "HEAD"
    }


def test_every_api_route_has_an_isolation_check_or_is_public(system: Crmd):
    routes = api_routes(system)
    missing = routes - PUBLIC - ISOLATION.keys()
    assert not missing, f"routes without an isolation check: {sorted(missing)}"
    assert not (PUBLIC | ISOLATION.keys()) - routes, "the tables name routes that are gone"


async def test_every_private_route_refuses_a_caller_without_a_token(client: Any, system: Crmd):
    for method, path in sorted(ISOLATION):
        concrete = re.sub(r"\{[^}]+\}", str(ObjectId()), path)
        response = await client.request(method, concrete)
        assert response.status == 401, (method, path)


@pytest.fixture
async def two_users(client: Any) -> tuple[Headers, Headers, dict[str, Any], dict[str, Any]]:
    signed = []
    for email in ("alice@example.com", "bob@example.com"):
        response = await client.post("/api/v1/user/dev-login", json={"email": email})
        signed.append(await response.json())
    alice, bob = ({"Authorization": f"Bearer {s['token']}"} for s in signed)
    return alice, bob, signed[0]["user"], signed[1]["user"]


@pytest.mark.slow  # every route, each with two users and the actors running: a sweep
@pytest.mark.parametrize("route", sorted(ISOLATION))
async def test_two_users_never_cross(
    route: tuple[str, str], client: Any, two_users: Any, delivering: Any
):
    await ISOLATION[route](client, *two_users)
