"""API keys through the API: made (the key answered once, stored as its hash alone),
listed, used by a REST client with its scopes in its own workspace only, revoked with
effect on the very next request, refused once expired."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.errors import Unprocessable
from crmd.store.tenant import TenantStore
from crmd.workspaces.keys import expiry
from tests.ingest.conftest import wait_done
from tests.workspaces.key_kit import bearer, make_key, sign_in

SOON = (datetime.now(UTC) + timedelta(days=30)).isoformat()


async def test_the_key_is_answered_once_and_only_its_hash_is_kept(client: Any, system: Crmd):
    owner, workspace = await sign_in(client, "owner@example.com")
    made = await make_key(client, owner, "write", "read", "read", name=" nightly sync ")
    key = made["key"]
    assert key.startswith("crmd_") and len(key) == 48
    assert made["prefix"] == key[:12]
    assert (made["name"], made["scopes"]) == ("nightly sync", ["read", "write"])
    assert made["expiresAt"] is None and made["createdAt"]
    [doc] = await system.db.api_keys.find({"userId": workspace}).to_list()
    assert doc["hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in repr(doc) and key[12:] not in repr(doc)
    listed = await client.get("/api/v1/keys", headers=owner)
    text = await listed.text()
    assert listed.status == 200 and key[12:] not in text and doc["hash"] not in text
    [item] = (await listed.json())["items"]
    assert set(item) >= {"lastUsedAt", "lastUsedFrom", "createdBy", "revokedAt", "prefix"}
    assert "key" not in item and "hash" not in item
    assert item["state"] == "live" and item["id"] == made["id"]
    assert item["createdBy"] == {"via": "api", "userId": workspace, "email": "owner@example.com"}
    assert item["lastUsedAt"] is None and item["revokedAt"] is None


async def test_a_read_key_lists_customers_and_may_not_send(client: Any, ingesting: Any):
    owner, _ = await sign_in(client, "owner@example.com")
    loader = bearer((await make_key(client, owner, "import", name="loader"))["key"])
    reader = bearer((await make_key(client, owner, "read", name="reader"))["key"])
    posted = await client.post(
        "/api/v1/customers",
        json={"externalId": "K1", "name": "Kay", "email": "kay@example.com"},
        headers=loader,
    )
    assert posted.status == 202
    await wait_done(client, owner, (await posted.json())["uploadId"])
    listed = await client.get("/api/v1/customers", headers=reader)
    assert listed.status == 200
    assert [c["email"] for c in (await listed.json())["items"]] == ["kay@example.com"]
    campaign = {"name": "Hi", "message": "Hi {name}", "rule": "spend > 0"}
    sent = await client.post("/api/v1/campaigns", json=campaign, headers=reader)
    refused = await sent.json()
    assert sent.status == 403 and refused["error"]["details"] == {"needs": "send"}
    assert "'reader'" in refused["error"]["message"]
    # Reading is not loading: the read key's import is refused as well.
    again = await client.post("/api/v1/customers", json={"externalId": "K2"}, headers=reader)
    assert again.status == 403 and (await again.json())["error"]["details"] == {"needs": "import"}


async def test_a_revoked_key_is_refused_on_the_next_request(client: Any, system: Crmd):
    owner, workspace = await sign_in(client, "owner@example.com")
    made = await make_key(client, owner, "read")
    key = bearer(made["key"])
    assert (await client.get("/api/v1/customers", headers=key)).status == 200
    gone = await client.delete(f"/api/v1/keys/{made['id']}", headers=owner)
    assert gone.status == 204
    refused = await client.get("/api/v1/customers", headers=key)
    assert refused.status == 401
    assert (await refused.json())["error"]["message"] == "this API key was revoked"
    # Revoked once: again is 404, and the audit log says so once.
    again = await client.delete(f"/api/v1/keys/{made['id']}", headers=owner)
    assert again.status == 404
    [item] = (await (await client.get("/api/v1/keys", headers=owner)).json())["items"]
    assert item["state"] == "revoked" and item["revokedAt"]
    actions = [
        (e["action"], e["outcome"], e["objectId"])
        async for e in TenantStore(system.db, workspace)["audit"].find({}, sort=[("at", 1)])
    ]
    assert actions == [
        ("key.created", "done", made["id"]),
        ("key.revoked", "done", made["id"]),
    ]


async def test_an_expired_key_is_refused(client: Any, system: Crmd):
    owner, _ = await sign_in(client, "owner@example.com")
    made = await make_key(client, owner, "read", expiresAt=SOON)
    key = bearer(made["key"])
    assert made["expiresAt"].startswith(SOON[:19])
    assert (await client.get("/api/v1/customers", headers=key)).status == 200
    past = datetime.now(UTC) - timedelta(seconds=1)  # as if thirty days went by
    await system.db.api_keys.update_one(
        {"_id": ObjectId(made["id"])}, {"$set": {"expiresAt": past}}
    )
    refused = await client.get("/api/v1/customers", headers=key)
    assert refused.status == 401
    assert (await refused.json())["error"]["message"] == "this API key has expired"
    [item] = (await (await client.get("/api/v1/keys", headers=owner)).json())["items"]
    assert item["state"] == "expired"


async def test_an_unknown_key_is_refused(client: Any):
    answer = await client.get("/api/v1/customers", headers=bearer("crmd_" + "A" * 43))
    assert answer.status == 401 and (await answer.json())["error"]["code"] == "unauthorized"


async def test_a_key_sees_its_own_workspace_and_names_no_other(client: Any, ingesting: Any):
    alice, alices = await sign_in(client, "alice@example.com")
    bob, bobs = await sign_in(client, "bob@example.com")
    customer = {"externalId": "A1", "name": "A", "email": "a1@example.com"}
    posted = await client.post("/api/v1/customers", json=customer, headers=alice)
    assert posted.status == 202
    await wait_done(client, alice, (await posted.json())["uploadId"])
    bobs_key = bearer((await make_key(client, bob, "read", "write", "import", "send"))["key"])
    seen = await (await client.get("/api/v1/customers", headers=bobs_key)).json()
    assert seen["items"] == [] and seen["total"] == 0
    # Naming Alice's workspace is refused, not ignored: the client is told it is wrong.
    named = await client.get("/api/v1/customers", headers={**bobs_key, "X-Crmd-Workspace": alices})
    assert named.status == 403 and (await named.json())["error"]["code"] == "key_workspace"
    own = await client.get("/api/v1/customers", headers={**bobs_key, "X-Crmd-Workspace": bobs})
    assert own.status == 200
    # Nor does a key reach a workspace's own routes, or anyone's keys.
    for method, path in (
        ("GET", f"/api/v1/workspaces/{alices}/members"),
        ("GET", f"/api/v1/workspaces/{bobs}/members"),
        ("GET", "/api/v1/keys"),
        ("GET", "/api/v1/workspaces"),
    ):
        answer = await client.request(method, path, headers=bobs_key)
        assert answer.status == 403, (method, path)
    alices_key = await make_key(client, alice, "read")
    gone = await client.delete(f"/api/v1/keys/{alices_key['id']}", headers=bob)
    assert gone.status == 404
    assert (await client.get("/api/v1/customers", headers=bearer(alices_key["key"]))).status == 200


async def test_the_last_use_and_its_address_are_noted(client: Any):
    owner, _ = await sign_in(client, "owner@example.com")
    made = await make_key(client, owner, "read")
    before = datetime.now(UTC)
    assert (await client.get("/api/v1/customers", headers=bearer(made["key"]))).status == 200
    [item] = (await (await client.get("/api/v1/keys", headers=owner)).json())["items"]
    assert item["lastUsedFrom"] == "127.0.0.1"
    used = datetime.fromisoformat(item["lastUsedAt"])
    assert before - timedelta(seconds=1) <= used <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "$.name"),
        ({"name": "   "}, "$.name"),
        ({"name": "x" * 81}, "$.name"),
        ({"name": "tab\there"}, "$.name"),
        ({"scopes": []}, "$.scopes"),
        ({"scopes": ["manage"]}, "$.scopes[0]"),
        ({"scopes": ["read", "own"]}, "$.scopes[1]"),
        ({"expiresAt": "2020-01-01T00:00:00Z"}, "$.expiresAt"),
        ({"expiresAt": (datetime.now(UTC) + timedelta(days=800)).isoformat()}, "$.expiresAt"),
        ({"expiresAt": "2030-01-01T00:00:00"}, "$.expiresAt"),  # no offset: which zone?
        ({"expiresAt": "next week"}, "$.expiresAt"),
        ({"expiresAt": "0001-01-01T00:00:00+01:00"}, "$.expiresAt"),  # before UTC's year 1
        ({"expiresAt": "9999-12-31T23:59:59-01:00"}, "$.expiresAt"),  # after its year 9999
        ({"key": "crmd_mine"}, "$.key"),
    ],
)
async def test_a_bad_key_is_refused_naming_the_field(
    client: Any, system: Crmd, change: dict[str, Any], field: str
):
    owner, _ = await sign_in(client, "owner@example.com")
    body = {"name": "ok", "scopes": ["read"], **change}
    answer = await client.post("/api/v1/keys", json=body, headers=owner)
    error = (await answer.json())["error"]
    assert answer.status == 422 and error["details"]["field"] == field, error
    assert await system.db.api_keys.count_documents({}) == 0


def test_expiry_takes_durations_days_and_moments():
    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert expiry("", now) is None and expiry("never", now) is None
    assert expiry("90d", now) == now + timedelta(days=90)
    assert expiry("12h", now) == now + timedelta(hours=12)
    assert expiry("2027-06-30", now) == datetime(2027, 6, 30, 23, 59, 59, tzinfo=UTC)
    moment = expiry("2027-06-30T12:00:00+05:30", now)
    assert moment == datetime(2027, 6, 30, 6, 30, tzinfo=UTC)
    assert expiry("2027-06-30T12:00:00", now) == datetime(2027, 6, 30, 12, tzinfo=UTC)
    with pytest.raises(Unprocessable, match="neither a duration"):
        expiry("next week", now)
    with pytest.raises(Unprocessable, match="too far away"):
        expiry("99999999999d", now)


async def test_an_answer_holding_a_key_is_kept_by_no_cache(client: Any, system: Crmd):
    owner, _ = await sign_in(client, "owner@example.com")
    made = await client.post("/api/v1/keys", json={"name": "c", "scopes": ["read"]}, headers=owner)
    assert made.status == 201 and made.headers["Cache-Control"] == "no-store"
