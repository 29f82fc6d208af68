"""Orders credited to the campaign whose message came last before them.

The rule: an order is attributed to the latest message its customer was sent (or, held
out, would have been sent: ``HELD_OUT`` logs keep that time as ``handedAt``) at or
before the order's date, when the order falls within that campaign's
``attributionDays`` of it. One order, one campaign at most: the latest message wins even
if an earlier campaign's window is longer. A message counts from its hand-over (a FAILED
one from when it failed: a recipient is in the messaged group by design, whatever the
vendor did); messages never handed over (CANCELLED, SUPPRESSED) count for nothing. An
order dated after the moment it is stored (by more than ``FUTURE_SLACK``) is not
attributed: a typo in a date must not decide a campaign's result.

Attribution happens as orders are stored (``crmd.ingest.persist``), for the orders of
each chunk: the customers they name are already read there; their messages are read by
id (a log's id is its campaign and customer, so the candidates are the tenant's recent
campaigns times the chunk's customers: no scan, no new index); the ``attributions``
collection gets one document per attributed order (``_id``: the order's), written only
when new or changed, and removed when a corrected order no longer qualifies. Storing the
same chunk again writes no attribution. The campaigns touched are marked
(``resultsDirty``); their figures are summed again by the clock
(``crmd.campaigns.effect``), from their attributions alone. A chunk's campaigns are
marked even when none of its attributions changed: it may be stored again because a
crash came between its attributions and their mark, and a mark lost so would leave the
figures short of them for good (the clock may have summed in between)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from crmd.messages import MessageStatus, message_id
from crmd.store.documents import Doc
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_new

FUTURE_SLACK = timedelta(hours=1)
"""An order dated this far after it was stored is still believed (clocks differ)."""
STOPPED = ("cancelled", "error")
"""A campaign stopped before it was sent: no message of it is later than its last move."""
NEVER_SENT = (MessageStatus.CANCELLED, MessageStatus.SUPPRESSED)
COMPARED = ("campaignId", "logId", "group", "variant", "amount", "orderDate", "at")


def utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def message_time(log: Doc) -> datetime | None:
    """When the log's recipient got (or, held out, would have got) the message."""
    if log.get("status") in NEVER_SENT:
        return None
    at = log.get("handedAt")
    if at is None and log.get("status") == MessageStatus.FAILED:
        at = log.get("updatedAt")
    return utc(at) if at is not None else None


class Customers:
    """The customers an order names: by external id, and by e-mail."""

    def __init__(self, customers: Iterable[Doc]) -> None:
        self.by_external: dict[str, set[str]] = defaultdict(set)
        self.by_email: dict[str, set[str]] = defaultdict(set)
        for customer in customers:
            if customer.get("customer_external_id"):
                self.by_external[customer["customer_external_id"]].add(str(customer["_id"]))
            if customer.get("email"):
                self.by_email[customer["email"]].add(str(customer["_id"]))

    def of(self, order: Doc) -> set[str]:
        found = set(self.by_external.get(order.get("customer_external_id") or "", ()))
        return found | self.by_email.get(order.get("customerEmail") or "", set())

    def all(self) -> set[str]:
        return {c for ids in (*self.by_external.values(), *self.by_email.values()) for c in ids}


async def _candidates(store: TenantStore, earliest: datetime, latest: datetime) -> dict[str, int]:
    """The tenant's campaigns whose messages could be credited with an order dated
    between ``earliest`` and ``latest``, and those whose messages could come after one
    of theirs (each such message is the latest before the order, which then counts for
    nobody if it is past that campaign's window): their attribution days by id."""
    cursor = store["campaigns"].find(
        {"planTop": {"$ne": None}, "createdAt": {"$lte": latest}},
        projection={"attributionDays": 1, "sentAt": 1, "createdAt": 1, "status": 1, "updatedAt": 1},
    )
    found: dict[str, int] = {}
    closed: list[tuple[str, int, datetime]] = []
    first: datetime | None = None  # the earliest a message of an open campaign was sent
    async for doc in cursor:
        days = int(doc.get("attributionDays") or 7)
        sent = doc.get("sentAt")
        if sent is None and doc.get("status") in STOPPED:
            sent = doc.get("updatedAt")  # (its last message was handed over before it stopped)
        if sent is not None and utc(sent) + timedelta(days=days) < earliest:
            closed.append((str(doc["_id"]), days, utc(sent)))  # every message too early
            continue
        found[str(doc["_id"])] = days
        created = utc(doc["createdAt"])
        first = created if first is None else min(first, created)
    # A closed campaign's last message may still be later than an open one's first.
    found |= {c: days for c, days, sent in closed if first is not None and sent >= first}
    return found


async def attribute(
    store: TenantStore, orders: list[tuple[str, Doc]], customers: Iterable[Doc]
) -> set[str]:
    """Attribute ``orders`` ((id, fields) as stored) among ``customers`` (the ones they
    name); returns the ids of the campaigns whose attributions changed."""
    now = datetime.now(UTC)
    believed = [(i, o) for i, o in orders if utc(o["orderDate"]) <= now + FUTURE_SLACK]
    named = Customers(customers)
    credited: dict[str, Doc] = {}
    if believed and named.all():
        dates = [utc(o["orderDate"]) for _, o in believed]
        campaigns = await _candidates(store, min(dates), max(dates))
        logs = await _logs(store, campaigns, named.all())
        for order_id, order in believed:
            found = _latest(order, named.of(order), logs, campaigns)
            if found is not None:
                credited[order_id] = found
    return await _store(store, [i for i, _ in orders], credited)


async def _logs(
    store: TenantStore, campaigns: dict[str, int], customers: set[str]
) -> dict[str, list[Doc]]:
    """The customers' messages of those campaigns, by customer: read by id."""
    if not campaigns:
        return {}
    ids = [message_id(c, customer) for c in campaigns for customer in customers]
    found = await store["communication_log"].by_ids(
        ids,
        projection={
            "campaignId": 1,
            "customerId": 1,
            "status": 1,
            "handedAt": 1,
            "updatedAt": 1,
            "variant": 1,
        },
    )
    by_customer: dict[str, list[Doc]] = defaultdict(list)
    for log in found:
        by_customer[str(log["customerId"])].append(log)
    return by_customer


def _latest(
    order: Doc, customers: set[str], logs: dict[str, list[Doc]], campaigns: dict[str, int]
) -> Doc | None:
    """The attribution of one order, or None: the latest message at or before it, if
    the order is within that campaign's window."""
    placed = utc(order["orderDate"])
    best: tuple[datetime, Doc] | None = None
    for customer in customers:
        for log in logs.get(customer, ()):
            at = message_time(log)
            if at is not None and at <= placed and (best is None or at > best[0]):
                best = (at, log)
    if best is None:
        return None
    at, log = best
    if placed > at + timedelta(days=campaigns[log["campaignId"]]):
        return None
    return {
        "campaignId": log["campaignId"],
        "logId": log["_id"],
        "customerId": str(log["customerId"]),
        "group": "held" if log.get("status") == MessageStatus.HELD_OUT else "messaged",
        "variant": log.get("variant"),
        "amount": float(order.get("amount") or 0.0),
        "orderDate": placed,
        "at": at,
    }


def _same(stored: Doc, new: Doc) -> bool:
    def read(value: object) -> object:
        return utc(value) if isinstance(value, datetime) else value

    return all(read(stored.get(k)) == new[k] for k in COMPARED)


async def _store(store: TenantStore, order_ids: list[str], credited: dict[str, Doc]) -> set[str]:
    """Write the attributions that are new or changed, remove the ones no longer due;
    returns the campaigns touched (credited or no longer: marked for their figures to be
    summed again)."""
    attributions = store["attributions"]
    stored = {d["_id"]: d for d in await attributions.by_ids(order_ids)}
    changed = {
        order_id: new
        for order_id, new in credited.items()
        if order_id not in stored or not _same(stored[order_id], new)
    }
    gone = [i for i in stored if i not in credited]
    # Every campaign credited, changed or not: see the module's docstring.
    touched = {new["campaignId"] for new in credited.values()}
    touched |= {stored[i]["campaignId"] for i in [*gone, *changed] if i in stored}
    # The new ones are inserted: SecantusDB inserts about four times faster than it
    # upserts. One another writer stored meanwhile (the same chunk twice at once) is
    # updated with the rest, as it would have been.
    new = [i for i in changed if i not in stored]
    raced = []
    if new:
        raced = await insert_new(attributions.insert_many([{"_id": i, **changed[i]} for i in new]))
    updated = [i for i in changed if i in stored] + [new[k] for k in raced]
    if updated:
        await attributions.bulk_update(
            [({"_id": i}, {"$set": changed[i]}) for i in updated], upsert=True
        )
    if gone:
        await attributions.delete_many({"_id": {"$in": gone}})
    if touched:
        await mark_dirty(store, touched)
    return touched


async def mark_dirty(store: TenantStore, campaigns: Iterable[str]) -> None:
    """The campaigns' figures are to be summed again (``crmd.campaigns.effect``)."""
    ids = [ObjectId(c) for c in campaigns if ObjectId.is_valid(c)]
    if ids:
        await store["campaigns"].update_many({"_id": {"$in": ids}}, {"$inc": {"resultsDirty": 1}})
