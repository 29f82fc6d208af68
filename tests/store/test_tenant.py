"""The tenant store against the real database: two users, no crossing."""

from __future__ import annotations

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.errors import NotFound
from crmd.store.tenant import TenancyError, TenantStore, object_id

ALICE, BOB = str(ObjectId()), str(ObjectId())


@pytest.fixture
async def stores(system: Crmd) -> tuple[TenantStore, TenantStore]:
    alice, bob = TenantStore(system.db, ALICE), TenantStore(system.db, BOB)
    await alice["customers"].insert_many([{"email": f"a{i}@x.io", "spend": i} for i in range(3)])
    await bob["customers"].insert_many([{"email": "b@x.io", "spend": 100}])
    return alice, bob


async def test_reads_and_counts_see_only_the_users_own_documents(stores):
    alice, bob = stores
    assert await alice["customers"].count_documents() == 3
    assert await bob["customers"].count_documents({"spend": {"$gte": 0}}) == 1
    assert [d["email"] async for d in bob["customers"].find()] == ["b@x.io"]
    assert await alice["customers"].find_one({"email": "b@x.io"}) is None


async def test_writes_cannot_reach_another_users_documents(stores, system: Crmd):
    alice, bob = stores
    bobs = await bob["customers"].find_one({})
    assert (
        await alice["customers"].update_one({"_id": bobs["_id"]}, {"$set": {"spend": 0}})
    ).matched_count == 0
    assert (await alice["customers"].delete_many({"_id": bobs["_id"]})).deleted_count == 0
    assert (await alice["customers"].delete_many()).deleted_count == 3
    assert await system.db.customers.count_documents({}) == 1
    assert (await bob["customers"].find_one({}))["spend"] == 100


async def test_inserted_documents_carry_the_owner(stores, system: Crmd):
    owners = await system.db.customers.distinct("userId", {"email": {"$regex": "^a"}})
    assert owners == [ALICE]


async def test_upserts_land_in_the_owners_data(system: Crmd):
    alice = TenantStore(system.db, ALICE)
    await alice["segments"].update_one(
        {"name": "vip"}, {"$set": {"rule": "spend > 1"}}, upsert=True
    )
    assert (await system.db.segments.find_one({"name": "vip"}))["userId"] == ALICE


async def test_aggregations_are_scoped_and_cannot_join_out(stores):
    alice, _ = stores
    cursor = await alice["customers"].aggregate([{"$group": {"_id": None, "n": {"$sum": 1}}}])
    assert [d["n"] async for d in cursor] == [3]
    with pytest.raises(TenancyError):
        await alice["customers"].aggregate(
            [{"$lookup": {"from": "customers", "as": "all", "pipeline": []}}]
        )
    nested = {"$facet": {"x": [{"$lookup": {"from": "orders", "as": "o", "pipeline": []}}]}}
    with pytest.raises(TenancyError):
        await alice["customers"].aggregate([nested])


async def test_naming_another_tenant_is_refused(stores):
    alice, _ = stores
    with pytest.raises(TenancyError):
        await alice["customers"].count_documents({"userId": BOB})
    with pytest.raises(TenancyError):
        await alice["customers"].insert_one({"userId": BOB, "email": "x@y.z"})
    with pytest.raises(TenancyError):
        await alice["customers"].update_many({}, {"$set": {"userId": BOB}})
    for update in (
        {"$rename": {"email": "userId"}},
        {"$unset": {"userId": ""}},
        [{"$replaceWith": {"userId": BOB}}],
    ):
        with pytest.raises(TenancyError):
            await alice["customers"].update_many({}, update)


def test_only_tenant_collections_are_served(system: Crmd):
    with pytest.raises(TenancyError):
        TenantStore(system.db, ALICE)["users"]
    with pytest.raises(TenancyError):
        TenantStore(system.db, "")


def test_malformed_ids_are_not_found():
    with pytest.raises(NotFound):
        object_id("not-an-id", "segment")
    assert object_id(ALICE) == ObjectId(ALICE)


async def test_numbers_and_tallies_are_the_stores_own_users(system: Crmd):
    alice, bob = TenantStore(system.db, str(ObjectId())), TenantStore(system.db, str(ObjectId()))
    assert await alice.reserve("campaigns", 3) == 1
    assert await alice.reserve("campaigns", 2) == 4
    assert await bob.reserve("campaigns", 1) == 1
    assert (await alice.highest("campaigns"), await bob.highest("campaigns")) == (5, 1)
    await alice.add_to_tally("campaigns", 5, stored=5)
    await alice.add_to_statuses({"SENT": 4, "FAILED": 1})
    top, tallies = await alice.highest_and_tally("campaigns")
    assert top == 5 and tallies["campaigns"] == 5
    assert (await alice.tally())["byStatus"] == {"SENT": 4, "FAILED": 1}
    assert (await bob.tally())["campaigns"] == 0  # counted: bob stored none
