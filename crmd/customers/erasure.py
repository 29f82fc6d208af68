"""Erasing one customer (GDPR article 17): ``DELETE /api/v1/customers/{id}``.

The customer's record and events go; what the tenant's figures are made of stays, with
nothing left that names the person; their address stays only as a keyed hash on the
suppression list (``crmd.suppressions.erased``), so that a later import of the same
address stores a customer again but no campaign, flow or message reaches them.

What each tenant collection keeps (``crmd.store.tenant.TENANT_COLLECTIONS``):

=================== =============================================================
collection          what erasure does
=================== =============================================================
customers           the record is deleted (last of all)
events              deleted
orders              kept, detached: no ``customer_external_id``, no
                    ``customerEmail``, any other trace replaced; amounts, dates,
                    items and order ids stay (revenue figures do not change)
attributions        kept (campaign revenue does not change); ``customerId``
                    becomes the erasure's pseudonym
communication_log   kept, anonymised: recipient, phone, the personalised text and
                    its values go, ``customerId`` becomes the pseudonym, a trace in
                    a vendor's reason is replaced; status, campaign, vendor, times
                    and engagement stay (campaign counts do not change)
send_chunks         an unsent message to them is logged SUPPRESSED (so it is
                    never sent) and taken out of its chunk (a sent chunk keeps
                    counts only)
flow_states         ended (``exited``, reason ``erased``), the entering event
flow_steps          stripped, stored again under an id with the pseudonym in
                    place of the customer's id (the flows' counts do not change)
suppressions        the address's entry is replaced by its keyed hash, which stays
                    for good (``DELETE /api/v1/suppressions`` passes it by)
soft_bounces        deleted (the address's soft-bounce count)
upload_errors       rejected CSV rows holding a trace: deleted
idempotency_keys    stored answers holding a trace: deleted (a retry of such a
                    request then runs again)
uploads             error messages holding a trace: the trace replaced
webhook_deliveries  payloads holding a trace: the trace replaced (a delivery not
                    yet made sends the scrubbed payload)
receipt_events      a trace replaced (receipts not yet matched have no tenant,
                    and hold only ids a vendor echoed back: not reachable here)
campaigns,          a trace (a rule or a text naming the address) replaced
segments, flows,
flow_versions
audit               entries stay; a trace in one (an address or an id in the
                    path of a request) is replaced, the crmd id by the pseudonym.
                    The erasure's own entry names the pseudonym
                    (``crmd.workspaces.audit.OBJECT``)
upload_chunks,      hold counts and ids only: nothing to do
webhooks, api_keys
=================== =============================================================

Crash-safe and idempotent: the customer is first marked ``erasing`` with a pseudonym
drawn once; every step finds its documents by what the record still says (crmd id,
external id, address) and does nothing the second time; the record itself is deleted
last. A request killed half way and sent again finishes the job; sent again after the
job is done, it is 404 (the customer is not there). Not covered: entries still in the
Redis streams (kept until trimmed) and the log files of the process.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from pymongo.asynchronous.database import AsyncDatabase

from crmd.campaigns import chunks
from crmd.customers.service import find_customer
from crmd.customers.traces import Traces
from crmd.flows.model import OPEN_STATES, StateStatus
from crmd.segments.slices import CustomerVersions
from crmd.store.documents import Customer, Doc
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_new
from crmd.suppressions import entries
from crmd.suppressions.erased import REASON, ErasedAddresses
from crmd.workspaces import audit
from crmd.workspaces.access import Caller

NOT_HERE = "no such customer in this workspace"
MARK = "erasing"
"""The record's field that says an erasure began: its time and pseudonym."""
BATCH = 500
OWN_MAKING = ("uploads", "receipt_events", "campaigns", "segments", "flows", "flow_versions")
"""Documents crmd made, where a value equal to a name or an external id is a status or a
setting: only the address and the crmd id are traces there (``Traces`` strict)."""
COPIES = ("webhook_deliveries",)
"""Copies of the customer's data (a payload): found by the address or crmd id, then
every trace in them replaced."""
DROPPED = {"upload_errors": False, "idempotency_keys": True}
"""Deleted when they hold a trace; True: only the address or crmd id counts (a stored
answer whose status happens to equal an external id is someone else's)."""
FREE_TEXT = frozenset({"reason", "event", "properties", "items", "note", "values"})
"""Fields of a document about the customer that hold what someone wrote or sent (a
vendor's reason, an event's properties, an order's items): every trace replaced there."""
AUDIT_KEPT = frozenset({"by", "action", "outcome", "at", "from"})
"""Who acted (a member, whose address may also be a customer's), what, when, from
where: never the erased customer's."""


class ErasureReport(msgspec.Struct):
    id: str
    """crmd's id of the customer that was erased."""
    erasedAs: str
    """The pseudonym that stands for them in the figures kept and in the audit log."""
    deleted: dict[str, int]
    """Documents deleted, by collection."""
    anonymised: dict[str, int]
    """Documents kept with the customer's traces taken out, by collection."""
    suppressed: bool
    """The address's hash went on the suppression list now (false: a run before put
    it there)."""


@dataclass
class Run:
    """One erasure under way: the record as marked, and what was done so far."""

    store: TenantStore
    customer: Customer
    traces: Traces
    erased: ErasedAddresses
    versions: CustomerVersions | None
    now: datetime
    deleted: Counter[str] = field(default_factory=Counter)
    anonymised: Counter[str] = field(default_factory=Counter)
    suppressed: bool = False


Step = Callable[[Run], Awaitable[None]]


async def erase(
    store: TenantStore,
    id_text: str,
    erased: ErasedAddresses,
    versions: CustomerVersions | None = None,
    steps: Sequence[Step] | None = None,
) -> ErasureReport:
    """Erase the customer whose crmd id, else external id, is ``id_text`` (404 when
    neither is this tenant's). ``steps``: the first of ``STEPS`` only (a test's crash
    half way)."""
    found = await find_customer(store, id_text)
    pseudonym = await _mark(store, found.id)
    traces = Traces(found.email, found.name, found.customer_external_id, found.id, pseudonym)
    run = Run(store, found, traces, erased, versions, datetime.now(UTC))
    for step in STEPS if steps is None else steps:
        await step(run)
    report = ErasureReport(
        found.id, pseudonym, dict(run.deleted), dict(run.anonymised), run.suppressed
    )
    return report


async def record_refusal(db: AsyncDatabase[Doc], caller: Caller | None) -> None:
    """The audit entry of an erasure refused as not found (another workspace's
    customer, or one erased already). The id asked for is not kept: it may be the own
    id of a customer erased before, whom the log must not name again."""
    if caller is not None and caller.workspace:
        await audit.record(db, caller, "customer.erased", refused=NOT_HERE)


async def _mark(store: TenantStore, customer_id: str) -> str:
    """Mark the record (once) and return the erasure's pseudonym: a retry reuses it,
    so one person stays one (unnamed) person in every figure."""
    mark = {"at": datetime.now(UTC), "pseudonym": f"erased-{uuid.uuid4().hex[:16]}"}
    customers = store["customers"]
    await customers.update_one(
        {"_id": customer_id, MARK: {"$exists": False}}, {"$set": {MARK: mark}}
    )
    doc = await customers.find_one({"_id": customer_id}, projection={MARK: 1})
    if doc is None:  # erased by another request meanwhile
        return str(mark["pseudonym"])
    return str(doc[MARK]["pseudonym"])


async def suppress_address(run: Run) -> None:
    """The hash goes on the list first, so nothing is sent from here on; the plain
    entry (an unsubscribe, a bounce) goes with its address."""
    email = entries.address(run.customer.email)
    if email is None:
        return
    digest = run.erased.digest(run.store.user_id, email)
    run.suppressed = await entries.suppress_erased(run.store, digest)
    if await entries.remove(run.store, email):
        run.deleted["suppressions"] += 1


async def unsent_messages(run: Run) -> None:
    """Messages planned to them and not sent yet are logged SUPPRESSED and taken out of
    their chunks (the log is anonymised by the next step)."""
    store, customer_id = run.store, run.customer.id
    open_chunks = store["send_chunks"].find({"done": False, "entries.customerId": customer_id})
    async for chunk in open_chunks:
        theirs = [e for e in chunk.get("entries", []) if e.get("customerId") == customer_id]
        logs = [
            chunks.suppressed_log(e, chunk["campaignId"], chunk["vendor"], run.now, REASON)
            for e in theirs
        ]
        new, _ = await chunks.insert_logs(store, logs)
        await store.add_to_tally("messages", new)
        await store["send_chunks"].update_one(
            {"_id": chunk["_id"]}, {"$pull": {"entries": {"customerId": customer_id}}}
        )
        run.anonymised["send_chunks"] += 1


async def message_logs(run: Run) -> None:
    store, traces = run.store, run.traces
    cleared = {"recipient": "", "phone": "", "message": "", "customerId": traces.pseudonym}
    updates = []
    async for doc in store["communication_log"].find({"customerId": run.customer.id}):
        rest = {k: v for k, v in doc.items() if k not in cleared}
        change = {**_scrub(traces, rest, FREE_TEXT), **cleared, "erasedAt": run.now}
        updates.append(({"_id": doc["_id"]}, {"$set": change, "$unset": {"values": ""}}))
    run.anonymised["communication_log"] += await _bulk(store, "communication_log", updates)


async def flow_runs(run: Run) -> None:
    """Each state and step is stored again under an id naming the pseudonym (a state's
    id holds the customer's), stripped and ended, and the old one deleted."""
    for name in ("flow_steps", "flow_states"):
        collection = run.store[name]
        async for doc in collection.find({"customerId": run.customer.id}):
            again = _flow_doc(run, name, doc)
            if again["_id"] == doc["_id"]:  # an id that does not hold the customer's
                fields = {k: v for k, v in again.items() if k != "_id"}
                await collection.update_one({"_id": doc["_id"]}, {"$set": fields})
            else:
                await insert_new(collection.insert_many([again]))
                await collection.delete_one({"_id": doc["_id"]})
            run.anonymised[name] += 1


def _flow_doc(run: Run, name: str, doc: Doc) -> Doc:
    traces = run.traces
    again = {**doc, **_scrub(traces, doc, FREE_TEXT), "customerId": traces.pseudonym}
    again["_id"] = traces.scrubbed(doc["_id"], strict=True)
    again.pop("userId", None)  # the store adds it
    if name == "flow_states":
        again["trigger"] = {}
        again["updatedAt"] = run.now
        if doc.get("status") in OPEN_STATES:
            again.update(status=StateStatus.EXITED, reason="erased", dueAt=None)
    return again


async def orders_and_attributions(run: Run) -> None:
    """Attributions first (found by their orders' ids), then the orders detached: a
    retry finds the orders by the customer's keys until they are detached."""
    store, customer = run.store, run.customer
    keys = [("customer_external_id", customer.customer_external_id)]
    keys.append(("customerEmail", customer.email))
    found: dict[str, Doc] = {}
    for key, value in keys:
        if value:
            async for doc in store["orders"].find({key: value}):
                found[doc["_id"]] = doc
    credited = await store["attributions"].by_ids(found)
    updates = [
        ({"_id": d["_id"]}, {"$set": changed})
        for d in credited
        if (changed := run.traces.changes(d, strict=True))
    ]
    run.anonymised["attributions"] += await _bulk(store, "attributions", updates)
    own = frozenset({"customer_external_id", "customerEmail"})
    detach = []
    for doc in found.values():
        update: Doc = {"$unset": dict.fromkeys(own, ""), "$set": {"detachedAt": run.now}}
        update["$set"].update(_scrub(run.traces, doc, FREE_TEXT, keep=own))
        detach.append(({"_id": doc["_id"]}, update))
    run.anonymised["orders"] += await _bulk(store, "orders", detach)


async def events_and_bounces(run: Run) -> None:
    store, customer = run.store, run.customer
    gone = await store["events"].delete_many({"customerId": customer.id})
    run.deleted["events"] += gone.deleted_count
    for where in ({"email": customer.email}, {"customerId": customer.id}):
        if all(where.values()):
            gone = await store["soft_bounces"].delete_many(where)
            run.deleted["soft_bounces"] += gone.deleted_count


async def other_traces(run: Run) -> None:
    """The collections whose documents may quote the person anywhere: read whole (the
    tenant's part), the ones about the person (``Traces.found_in``) scrubbed or
    deleted."""
    store, traces = run.store, run.traces
    for name, strict in DROPPED.items():
        doomed = [d["_id"] async for d in store[name].find({}) if traces.found_in(d, strict)]
        for start in range(0, len(doomed), BATCH):
            gone = await store[name].delete_many({"_id": {"$in": doomed[start : start + BATCH]}})
            run.deleted[name] += gone.deleted_count
    for name in (*OWN_MAKING, *COPIES):
        strict = name in OWN_MAKING
        updates = [
            ({"_id": d["_id"]}, {"$set": changed})
            async for d in store[name].find({})
            if traces.found_in(_fields(d), strict=True)
            and (changed := traces.changes(d, strict=strict))
        ]
        run.anonymised[name] += await _bulk(store, name, updates)
    # The audit log's entries are changed by its own module alone.
    run.anonymised[audit.COLLECTION] += await audit.rewrite_traces(store, _scrubbed(traces))


def _scrub(
    traces: Traces, doc: Doc, free: frozenset[str], keep: frozenset[str] = frozenset()
) -> Doc:
    """The changes that scrub a document about the customer: its free texts of every
    trace, every other field (a status, a vendor, an amount) of the address and crmd id
    alone, which a status can never equal."""
    return {
        **traces.changes(doc, keep=keep | free, strict=True),
        **traces.changes({k: v for k, v in doc.items() if k in free}),
    }


def _fields(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if k not in ("_id", "userId")}


def _scrubbed(traces: Traces) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def changes(doc: Mapping[str, Any]) -> dict[str, Any]:
        about = traces.found_in(
            {k: v for k, v in doc.items() if k not in AUDIT_KEPT | {"_id", "userId"}}, strict=True
        )
        changed = traces.changes(doc, keep=AUDIT_KEPT, strict=True) if about else {}
        named = str(doc.get("objectId", "")).casefold()
        if named and named in {traces.external_id.casefold(), traces.email.casefold()}:
            changed["objectId"] = traces.pseudonym  # the path named them by their own id
        return changed

    return changes


async def profile(run: Run) -> None:
    """Last: the record, whose keys every step before found its documents by."""
    store, customer = run.store, run.customer
    if run.versions is not None:  # the audience counts' cache is told it changed
        await run.versions.changed(store.user_id, [customer.n])
    gone = await store["customers"].delete_one({"_id": customer.id})
    if gone.deleted_count:
        await store.add_to_tally("customers", -1)
        run.deleted["customers"] += 1


async def _bulk(store: TenantStore, name: str, updates: list[tuple[Doc, Doc]]) -> int:
    done = 0
    for start in range(0, len(updates), BATCH):
        batch = updates[start : start + BATCH]
        done += (await store[name].bulk_update(batch)).matched_count
    return done


STEPS: tuple[Step, ...] = (
    suppress_address,
    unsent_messages,
    message_logs,
    flow_runs,
    orders_and_attributions,
    events_and_bounces,
    other_traces,
    profile,
)
"""In this order: the address is suppressed before anything else, the record deleted
after everything else."""
