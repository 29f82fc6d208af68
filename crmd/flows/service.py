"""Flows' definitions: made, changed, versioned, activated, paused and archived; read
with their counts. What the API and the console share (the engine reads ``flows`` and
``flow_versions`` itself).

Each write is one document. A new version is written to ``flow_versions`` first and
then the flow is pointed at it, only if the flow is still as it was read: a crash in
between leaves a version nothing refers to, which is harmless (no customer can have
entered it, and the next change writes that number again, over it), and two changes at
once cannot both win (the loser answers 409).

Versions: a flow that has never been active is edited in place (its version 1, which no
customer can be in); once it has been active, a change to what a run reads (entry,
reentryDays, trigger, steps, goal, quietHours) makes version + 1, and customers already
inside finish the version they entered. Renaming, pausing and activating make none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from crmd.campaigns.vendors import Vendors
from crmd.errors import Conflict, NotFound
from crmd.flows.checks import InvalidFlow, Limits, check, kind_of, trigger_key, walk
from crmd.flows.model import Definition, FlowBody, FlowChange
from crmd.flows.schema import (
    Flow,
    FlowCounts,
    FlowRecord,
    FlowVersion,
    StepRuns,
    VersionRef,
)
from crmd.store.documents import decode
from crmd.store.tenant import TenantStore

DEFINITION_FIELDS = ("entry", "reentryDays", "trigger", "steps", "goal", "quietHours")
ORPHAN_AFTER = timedelta(minutes=1)
"""A version written this long ago that its flow does not point at was left by a
crash between the two writes (a change takes milliseconds)."""
REMOVABLE = ("goal", "quietHours")
STATE_COUNTS = ("waiting", "active", "done", "exited", "converted")
SENT_FIGURES = ("sent", "delivered", "failed", "unknown")
"""A flow campaign's stats that count a message handed to its vendor (``crmd.campaigns
.stats.GROUPS``): pending, cancelled, suppressed and held out ones were not."""


def stored(definition: Definition) -> dict[str, Any]:
    """A definition as a document: camelCase, the kinds a step does not have left out."""
    plain: dict[str, Any] = _without_nulls(msgspec.to_builtins(definition))
    return plain


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def actions_of(status: str) -> list[Any]:
    return {
        "draft": ["activate", "archive"],
        "active": ["pause", "archive"],
        "paused": ["activate", "archive"],
    }.get(status, [])


class Flows:
    def __init__(self, vendors: Vendors, limits: Limits) -> None:
        self.vendors = vendors
        self.limits = limits

    async def checked(self, store: TenantStore, body: FlowBody | Definition) -> Definition:
        """``body``'s definition, or 422 naming the field: the pure checks, then the
        segment a trigger names, which must be the user's."""
        definition = check(body, self.vendors, self.limits)
        segment = definition.trigger.segment
        if segment is not None:
            found = None
            if ObjectId.is_valid(segment):
                found = await store["segments"].find_one(
                    {"_id": ObjectId(segment)}, projection={"_id": 1}
                )
            if found is None:
                raise InvalidFlow(f"no segment {segment!r}", "$.trigger.segment")
        return definition

    async def create(self, store: TenantStore, body: FlowBody) -> FlowRecord:
        if body.status == "paused":  # (paused says it ran; a new flow never has)
            raise InvalidFlow("a new flow is a draft or active", "$.status")
        definition = await self.checked(store, body)
        now = _now()
        flow_id = ObjectId()
        await _write_version(store, str(flow_id), 1, definition, now, in_place=True)
        doc = {
            "_id": flow_id,
            "n": await store.reserve("flows", 1),
            "name": body.name,
            "status": body.status,
            "version": 1,
            "definition": stored(definition),
            "triggerKey": trigger_key(definition.trigger),
            "createdAt": now,
            "updatedAt": now,
            "activatedAt": now if body.status == "active" else None,
        }
        await store["flows"].insert_one(doc)
        return decode(doc, FlowRecord)

    async def change(self, store: TenantStore, flow_id: str, change: FlowChange) -> FlowRecord:
        """Apply a PATCH: the fields given replace the flow's (see the module's doc for
        versions); a status given moves it as activate or pause would."""
        flow = await flow_by_id(store, flow_id)
        if flow.status == "archived":
            raise Conflict("an archived flow cannot be changed")
        if change.status is not None:
            _movable(flow, change.status)
        given = _given(change)
        proposed = msgspec.structs.replace(flow.definition, **given)
        if change.entry == "once" and change.reentryDays is None:
            proposed = msgspec.structs.replace(proposed, reentryDays=0)
        activating = change.status == "active" and flow.status != "active"
        definition = flow.definition
        if given or activating:
            definition = await self.checked(store, proposed)
        now = _now()
        sets: dict[str, Any] = {"updatedAt": now}
        version = flow.version
        first_activation = change.status == "active" and flow.activatedAt is None
        if stored(definition) != stored(flow.definition) or first_activation:
            if flow.activatedAt is not None:
                version += 1
            in_place = flow.activatedAt is None
            await _write_version(store, str(flow.id), version, definition, now, in_place=in_place)
            sets |= {
                "version": version,
                "definition": stored(definition),
                "triggerKey": trigger_key(definition.trigger),
            }
        if change.name is not None:
            sets["name"] = change.name
        if change.status is not None:
            sets["status"] = change.status
            if change.status == "active" and flow.activatedAt is None:
                sets["activatedAt"] = now
        return await _moved(store, flow, sets)

    async def activate(self, store: TenantStore, flow_id: str) -> FlowRecord:
        """Draft or paused to active; its definition is checked again (a segment or a
        vendor may be gone since it was saved)."""
        flow = await flow_by_id(store, flow_id)
        _movable(flow, "active")
        await self.checked(store, flow.definition)
        now = _now()
        sets: dict[str, Any] = {"status": "active", "updatedAt": now}
        if flow.activatedAt is None:  # version 1 as the flow has it (see _moved)
            await _write_version(store, str(flow.id), 1, flow.definition, now, in_place=True)
            sets["activatedAt"] = now
        return await _moved(store, flow, sets)

    async def pause(self, store: TenantStore, flow_id: str) -> FlowRecord:
        """Active to paused: no one enters, and those inside wait where they are."""
        flow = await flow_by_id(store, flow_id)
        _movable(flow, "paused")
        return await _moved(store, flow, {"status": "paused", "updatedAt": _now()})

    async def archive(self, store: TenantStore, flow_id: str) -> FlowRecord:
        """Stop it for good and hide it from the list; it is kept, as its customers'
        states and step logs refer to it."""
        flow = await flow_by_id(store, flow_id)
        if flow.status == "archived":
            raise Conflict("the flow is archived already")
        return await _moved(store, flow, {"status": "archived", "updatedAt": _now()})


def _given(change: FlowChange) -> dict[str, Any]:
    """The definition's fields a PATCH sets: those it names (``goal`` and
    ``quietHours`` may be set to null, which removes them)."""
    given = {}
    for name in DEFINITION_FIELDS:
        value = getattr(change, name)
        if value is not msgspec.UNSET and (value is not None or name in REMOVABLE):
            given[name] = value
    return given


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _movable(flow: FlowRecord, to: str) -> None:
    """409 unless ``flow`` may go from its status to ``to``."""
    status = flow.status
    if status == to:
        if to != "draft":
            raise Conflict(f"the flow is {status} already")
        return
    if status == "archived":
        raise Conflict("an archived flow cannot be changed")
    if to == "draft":
        raise Conflict("a flow that has been activated cannot go back to draft")
    if to == "paused" and status != "active":
        raise Conflict(f"only an active flow can be paused, and this one is {status}")


async def _write_version(
    store: TenantStore,
    flow_id: str,
    version: int,
    definition: Definition,
    now: datetime,
    *,
    in_place: bool,
) -> None:
    """Write a version, before the flow points at it. ``in_place``: the version 1 of a
    flow never active, written again at each edit. Otherwise a new number: one a crash
    left unreferenced (older than ``ORPHAN_AFTER``) is written over; one written just
    now is a change being made meanwhile, 409."""
    key = f"{flow_id}:{version}"
    doc = {"flowId": flow_id, "version": version, "definition": stored(definition)}
    versions = store["flow_versions"]
    if in_place:
        await versions.update_one({"_id": key}, {"$set": {**doc, "createdAt": now}}, upsert=True)
        return
    try:
        await versions.insert_one({"_id": key, **doc, "createdAt": now})
        return
    except DuplicateKeyError:
        left = await versions.find_one({"_id": key}, projection={"createdAt": 1})
    if left is None or now - left["createdAt"] < ORPHAN_AFTER:
        raise Conflict("the flow is being changed meanwhile: read it again and retry")
    again = await versions.update_one(
        {"_id": key, "createdAt": left["createdAt"]}, {"$set": {**doc, "createdAt": now}}
    )
    if again.matched_count != 1:
        raise Conflict("the flow is being changed meanwhile: read it again and retry")


async def _moved(store: TenantStore, flow: FlowRecord, sets: dict[str, Any]) -> FlowRecord:
    """Write ``sets`` if the flow is still as it was read, else 409: a change made
    meanwhile is never overwritten. (Two edits of a draft at once may leave its version
    1 as the loser wrote it: a draft's version 1 is written again from the flow when it
    is first activated, before any customer can enter it.)"""
    as_read = {"status": flow.status, "version": flow.version, "updatedAt": flow.updatedAt}
    done = await store["flows"].find_one_and_update(
        {"_id": flow.id, **as_read},
        {"$set": sets},
        return_document=True,
    )
    if done is None:
        raise Conflict("the flow changed meanwhile: read it again and retry")
    return decode(done, FlowRecord)


async def flow_by_id(store: TenantStore, flow_id: str) -> FlowRecord:
    """The user's flow (404 when malformed, absent or another user's)."""
    return decode(await store["flows"].get(flow_id, "flow"), FlowRecord)


async def version_of(store: TenantStore, flow_id: str, version: int) -> FlowVersion:
    flow = await flow_by_id(store, flow_id)
    doc = None
    if 1 <= version <= flow.version:
        doc = await store["flow_versions"].find_one({"_id": f"{flow.id}:{version}"})
    if doc is None:
        raise NotFound(f"flow {flow_id!r} has no version {version}")
    return decode(doc, FlowVersion)


async def versions_of(store: TenantStore, flow: FlowRecord) -> list[VersionRef]:
    """Its versions, oldest first (by _id: one read of at most ``version`` documents)."""
    ids = [f"{flow.id}:{n}" for n in range(1, flow.version + 1)]
    found = store["flow_versions"].find(
        {"_id": {"$in": ids}}, projection={"version": 1, "createdAt": 1}
    )
    refs = [VersionRef(d["version"], d["createdAt"]) async for d in found]
    return sorted(refs, key=lambda ref: ref.version)


async def counts_of(store: TenantStore, flow_ids: Sequence[str]) -> dict[str, FlowCounts]:
    """Each flow's customers by status (``flow_states``, on its {userId, flowId,
    status} index) and messages sent (its send steps' campaigns, on {userId, flowId}):
    two aggregations for a whole page of flows."""
    by_flow: dict[str, dict[str, int]] = {i: {} for i in flow_ids}
    states = await store["flow_states"].aggregate(
        [
            {"$match": {"flowId": {"$in": list(flow_ids)}}},
            {"$group": {"_id": {"f": "$flowId", "s": "$status"}, "n": {"$sum": 1}}},
        ]
    )
    async for row in states:
        by_flow[row["_id"]["f"]][row["_id"]["s"]] = row["n"]
    sent = await store["campaigns"].aggregate(
        [
            {"$match": {"flowId": {"$in": list(flow_ids)}, "kind": "flow"}},
            {
                "$group": {
                    "_id": "$flowId",
                    "n": {
                        "$sum": {"$add": [{"$ifNull": [f"$stats.{k}", 0]} for k in SENT_FIGURES]}
                    },
                }
            },
        ]
    )
    messaged = {row["_id"]: int(row["n"] or 0) async for row in sent}
    return {
        flow: FlowCounts(
            entered=sum(found.values()),
            **{status: found.get(status, 0) for status in STATE_COUNTS},
            messaged=messaged.get(flow, 0),
        )
        for flow, found in by_flow.items()
    }


async def step_runs(store: TenantStore, flow: FlowRecord) -> list[StepRuns]:
    """How often each step of the current version ran (``flow_steps``, on its {userId,
    flowId, version, path} index), in the steps' order."""
    found = await store["flow_steps"].aggregate(
        [
            {"$match": {"flowId": str(flow.id), "version": flow.version}},
            {"$group": {"_id": "$path", "n": {"$sum": 1}}},
        ]
    )
    runs = {row["_id"]: row["n"] async for row in found}
    return [
        StepRuns(path, kind_of(step), runs[path])
        for path, step in walk(flow.definition.steps)
        if path in runs
    ]


def flow_view(flow: FlowRecord, counts: FlowCounts) -> Flow:
    return Flow(
        id=str(flow.id),
        name=flow.name,
        status=flow.status,
        version=flow.version,
        definition=flow.definition,
        triggerKey=flow.triggerKey,
        createdAt=flow.createdAt,
        updatedAt=flow.updatedAt,
        activatedAt=flow.activatedAt,
        actions=actions_of(flow.status),
        counts=counts,
    )


async def flow_read(store: TenantStore, flow: FlowRecord) -> Flow:
    """A flow as ``GET /flows/{id}`` answers it: with its versions, counts and each
    step's runs."""
    counts = (await counts_of(store, [str(flow.id)]))[str(flow.id)]
    view = flow_view(flow, counts)
    view.versions = await versions_of(store, flow)
    view.steps = await step_runs(store, flow)
    return view
