"""The upgrade to workspaces, on a database written by crmd before them
(``data/before_workspaces.json``, made by ``make_old_layout.py``): each user's data is
their own workspace's, nothing is rewritten, lost or reassigned, and a crash part way
leaves nothing the next start does not finish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bson import json_util

from crmd.app import Crmd, open_crmd
from crmd.config import Config
from crmd.workspaces import members, migrate

DUMP = Path(__file__).parent / "data" / "before_workspaces.json"
NEW = {"workspaces", "memberships", "migrations", "api_keys", "audit", "invitations"}


def before() -> dict[str, list[dict[str, Any]]]:
    loaded: dict[str, list[dict[str, Any]]] = json_util.loads(DUMP.read_text())
    return loaded


def same(doc: dict[str, Any]) -> Any:
    """A document as the dump spells it (its times with their zone)."""
    return json_util.loads(json_util.dumps(doc))


@pytest.fixture
async def system(config: Config, mongo: Any, redis: Any) -> AsyncIterator[Crmd]:
    """crmd started on the old database: the upgrade runs as it opens."""
    db = mongo[config.mongodb.database]
    for name, docs in before().items():
        if docs:
            await db[name].insert_many(docs)
    async with open_crmd(config) as crmd:
        yield crmd


async def test_every_users_data_is_their_own_workspaces_and_nothing_changed(
    client: Any, system: Crmd
) -> None:
    old = before()
    db = system.db
    users = {str(u["_id"]): u["email"] for u in old["users"]}
    for user, email in users.items():
        workspace = await db.workspaces.find_one({"_id": json_util.ObjectId(user)})
        assert workspace is not None, email
        found = await members.membership(db, user, user)
        assert found is not None and found.role == "owner"
    assert await db.migrations.count_documents({"_id": migrate.MARK}) == 1

    # Each operator signs in as before and finds their data, in the same numbers.
    for user, email in users.items():
        signed = await (await client.post("/api/v1/user/dev-login", json={"email": email})).json()
        assert signed["user"]["id"] == user
        auth = {"Authorization": f"Bearer {signed['token']}"}
        listed = await (await client.get("/api/v1/workspaces", headers=auth)).json()
        assert [(w["id"], w["role"], w["current"]) for w in listed["items"]] == [
            (user, "owner", True)
        ]
        for path, collection in (
            ("customers", "customers"),
            ("orders", "orders"),
            ("segments", "segments"),
            ("campaigns", "campaigns"),
            ("flows", "flows"),
            ("webhooks", "webhooks"),
            ("uploads", "uploads"),
            ("suppressions", "suppressions"),
        ):
            answer = await (await client.get(f"/api/v1/{path}", headers=auth)).json()
            owned = [d for d in old[collection] if d.get("userId") == user]
            assert owned, (email, collection)
            assert answer["total"] == len(owned), (email, path, answer["total"], len(owned))
        campaign = next(d for d in old["campaigns"] if d["userId"] == user)
        logs = await (
            await client.get(f"/api/v1/campaigns/{campaign['_id']}/logs", headers=auth)
        ).json()
        sent = [d for d in old["communication_log"] if d["campaignId"] == str(campaign["_id"])]
        assert logs["total"] == len(sent) > 0

    # Not one document of before was rewritten, dropped or given to someone else.
    for name, docs in old.items():
        now = {d["_id"]: d async for d in db[name].find()}
        assert set(now) == {d["_id"] for d in docs}, name
        if name in ("users", "counters", "fences"):  # sign-in and reads move these
            continue
        for doc in docs:
            assert same(now[doc["_id"]]) == doc, (name, doc["_id"])
    assert set(await db.list_collection_names()) - set(old) <= NEW


async def test_a_crash_part_way_is_finished_by_the_next_start(
    system: Crmd, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = system.db
    await db.migrations.delete_many({})
    await db.memberships.delete_many({})
    await db.workspaces.delete_many({})
    made = 0
    real = migrate.ensure_own_workspace

    async def dies_after_one(*args: Any) -> None:
        nonlocal made
        if made == 1:
            raise SystemExit("killed")
        made += 1
        await real(*args)

    monkeypatch.setattr(migrate, "ensure_own_workspace", dies_after_one)
    with pytest.raises(SystemExit):
        await migrate.give_users_workspaces(db)
    assert await db.workspaces.count_documents({}) == 1
    assert await db.migrations.count_documents({}) == 0  # not marked done

    monkeypatch.setattr(migrate, "ensure_own_workspace", real)
    assert await migrate.give_users_workspaces(db) == 2
    for user in before()["users"]:
        found = await members.membership(db, str(user["_id"]), str(user["_id"]))
        assert found is not None and found.role == "owner"
    assert await db.memberships.count_documents({}) == 2
    assert await migrate.give_users_workspaces(db) == 0  # done once, never again
