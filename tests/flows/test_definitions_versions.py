"""Versions under concurrent changes and crashes: the flow and the version it points at
always agree, a change never overwrites another, and a crash's leftover is harmless."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.errors import Conflict
from crmd.flows.service import _moved, _now, _write_version, flow_by_id
from crmd.store.tenant import TenantStore
from tests.flows.test_definitions import WELCOME, call, post


async def pointed_version(system: Crmd, flow_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    flow = await system.web_db.flows.find_one({"_id": ObjectId(flow_id)})
    version = await system.web_db.flow_versions.find_one({"_id": f"{flow_id}:{flow['version']}"})
    return flow, version


async def test_changes_at_once_leave_the_flow_and_its_versions_agreeing(
    client: Any, auth: dict[str, str], system: Crmd
):
    _, made = await post(client, auth, {**WELCOME, "status": "active"})
    waits = [f"{h}h" for h in range(2, 8)]
    answers = await asyncio.gather(
        *(
            call(client, auth, "PATCH", f"/{made['id']}", {"steps": [{"wait": wait}]})
            for wait in waits
        )
    )
    won = [a for status, a in answers if status == 200]
    lost = [a for status, a in answers if status != 200]
    assert won and all(a["error"]["code"] == "conflict" for a in lost), lost
    flow, version = await pointed_version(system, made["id"])
    assert flow["version"] == 1 + len(won)
    assert version["definition"] == flow["definition"]
    for answer in won:  # each winner's version holds what it wrote
        _, kept = await call(client, auth, "GET", f"/{made['id']}/versions/{answer['version']}")
        assert kept["definition"]["steps"] == answer["definition"]["steps"]


async def test_a_version_a_crash_left_behind_is_written_over(
    client: Any, auth: dict[str, str], system: Crmd
):
    """A version written and never pointed at (the process died between the two writes)
    is taken by the next change; one written a moment ago is a change in flight: 409."""
    _, made = await post(client, auth, {**WELCOME, "status": "active"})
    flow_id, user = made["id"], (await pointed_version(system, made["id"]))[0]["userId"]
    leftover = {"_id": f"{flow_id}:2", "userId": user, "flowId": flow_id, "version": 2}
    stale = datetime.now(UTC) - timedelta(minutes=5)
    await system.web_db.flow_versions.insert_one(
        {**leftover, "definition": {"leftover": True}, "createdAt": datetime.now(UTC)}
    )
    status, answer = await call(client, auth, "PATCH", f"/{flow_id}", {"steps": [{"wait": "5h"}]})
    assert status == 409 and "meanwhile" in answer["error"]["message"]
    assert (await pointed_version(system, flow_id))[0]["version"] == 1
    await system.web_db.flow_versions.update_one(
        {"_id": f"{flow_id}:2"}, {"$set": {"createdAt": stale}}
    )
    status, answer = await call(client, auth, "PATCH", f"/{flow_id}", {"steps": [{"wait": "5h"}]})
    assert status == 200 and answer["version"] == 2
    flow, version = await pointed_version(system, flow_id)
    assert version["definition"] == flow["definition"]
    assert version["definition"]["steps"] == [{"wait": "5h"}]


async def test_first_activation_writes_version_one_as_the_flow_has_it(
    client: Any, auth: dict[str, str], system: Crmd
):
    """Two edits of a draft at once may leave version 1 as the loser wrote it; no one
    can be in a draft, and activating writes version 1 again from the flow."""
    _, made = await post(client, auth, WELCOME)
    await system.web_db.flow_versions.update_one(
        {"_id": f"{made['id']}:1"}, {"$set": {"definition.steps": [{"wait": "9h"}]}}
    )
    status, active = await call(client, auth, "POST", f"/{made['id']}/activate")
    assert status == 200 and active["version"] == 1
    flow, version = await pointed_version(system, made["id"])
    assert version["definition"] == flow["definition"]
    assert version["definition"]["steps"][0] == {"wait": "1d"}


async def test_a_change_made_from_a_stale_read_is_refused(
    client: Any, auth: dict[str, str], system: Crmd
):
    """The service's compare-and-set: a change computed from the flow as it was before
    another change landed answers 409 and writes nothing over it."""
    _, made = await post(client, auth, {**WELCOME, "status": "active"})
    flow, _ = await pointed_version(system, made["id"])
    store = TenantStore(system.web_db, flow["userId"])
    stale = await flow_by_id(store, made["id"])
    status, _ = await call(client, auth, "PATCH", f"/{made['id']}", {"steps": [{"wait": "4h"}]})
    assert status == 200
    with pytest.raises(Conflict):  # its next version is the one just made
        await _write_version(
            store, made["id"], stale.version + 1, stale.definition, _now(), in_place=False
        )
    with pytest.raises(Conflict):  # the flow is not as it was read
        await _moved(store, stale, {"status": "paused"})
    now, version = await pointed_version(system, made["id"])
    assert now["version"] == 2 and now["definition"]["steps"] == [{"wait": "4h"}]
    assert version["definition"] == now["definition"] and now["status"] == "active"
