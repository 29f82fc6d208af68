"""find_in: a long key list asked in batches gives what one ``$in`` would."""

from __future__ import annotations

from crmd.app import Crmd
from crmd.store.reads import IN_BATCH, find_in
from crmd.store.tenant import TenantStore


async def test_every_key_is_found_once_across_batches_and_the_filter_holds(system: Crmd):
    n = IN_BATCH * 3 + 5
    mine, theirs = TenantStore(system.db, "u1"), TenantStore(system.db, "u2")
    await mine["segments"].insert_many([{"_id": f"k{i}", "odd": i % 2} for i in range(n)])
    await theirs["segments"].insert_many([{"_id": f"t{i}", "odd": 1} for i in range(5)])
    keys = [f"k{i}" for i in range(n)] + ["k1", "k3", "t1", "missing"]  # repeats, others'
    found = [d async for d in find_in(mine["segments"], "_id", keys, {"odd": 1}, {"odd": 1})]
    assert sorted(d["_id"] for d in found) == sorted(f"k{i}" for i in range(1, n, 2))
    assert all(set(d) == {"_id", "odd"} for d in found)
    assert [d async for d in find_in(mine["segments"], "_id", [])] == []
