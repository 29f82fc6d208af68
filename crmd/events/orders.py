"""Every new order raises an ``order`` event, written as its orders are: one insert per
chunk, its id derived from the order's so that a chunk written again adds none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmd.events.checks import as_utc
from crmd.events.model import ORDER, AfterStore, Event, event_record_id, nothing_after_store
from crmd.events.store import Changed, _unchanged, store_events
from crmd.store.tenant import TenantStore

if TYPE_CHECKING:
    from crmd.ingest.persist import OrderIndex

Doc = dict[str, Any]


def _owners(customers: list[Doc]) -> tuple[dict[str, Doc], dict[str, Doc]]:
    """The customers by external id and by e-mail (the first to arrive for an address)."""
    by_id = {c["customer_external_id"]: c for c in customers if c.get("customer_external_id")}
    by_email: dict[str, Doc] = {}
    for customer in sorted(customers, key=lambda c: c.get("n", 0), reverse=True):
        if customer.get("email"):
            by_email[customer["email"]] = customer
    return by_id, by_email


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None) if moment.tzinfo else moment


def is_first(order_id: str, customer: Doc, orders: OrderIndex) -> bool:
    """The order is the customer's earliest stored one (by date, then id)."""
    external, email = customer.get("customer_external_id") or "", customer.get("email") or ""
    mine = {o["_id"]: o for o in orders.by_id.get(external, [])} if external else {}
    mine.update({o["_id"]: o for o in orders.by_email.get(email, [])})
    if not mine:
        return True
    earliest = min(mine.values(), key=lambda o: (_naive(o["orderDate"]), str(o["_id"])))
    return bool(earliest["_id"] == order_id)


def order_events(
    user: str,
    orders: list[tuple[str, Doc]],
    customers: list[Doc],
    index: OrderIndex,
    source: str,
    oldest: datetime,
    now: datetime,
) -> tuple[list[Event], dict[str, int]]:
    """The ``order`` event of each order (``(_id, fields)``) whose customer is stored,
    and the customers' numbers."""
    by_id, by_email = _owners(customers)
    events, numbers = [], {}
    for order_id, fields in orders:
        external, email = fields.get("customer_external_id"), fields.get("customerEmail")
        customer = (by_id.get(external) if external else None) or (
            by_email.get(email) if email else None
        )
        when = as_utc(fields["orderDate"])
        if customer is None or when < oldest:
            continue
        event_id = f"{ORDER}:{order_id}"
        events.append(
            Event(
                id=event_record_id(user, event_id),
                userId=user,
                customerId=str(customer["_id"]),
                name=ORDER,
                properties={
                    "orderId": fields.get("order_external_id") or "",
                    "amount": fields["amount"],
                    "items": list(fields.get("items") or []),
                    "first": is_first(order_id, customer, index),
                },
                timestamp=when,
                eventId=event_id,
                receivedAt=now,
                source=source,
            )
        )
        numbers[str(customer["_id"])] = customer.get("n", 0)
    return events, numbers


class OrderEvents:
    """Raises the ``order`` events of the orders the ingest actor writes
    (``crmd.ingest.persist.OrdersWritten``): the new ones are stored (a chunk written
    again adds none) and told to ``after_store``."""

    def __init__(
        self,
        after_store: AfterStore = nothing_after_store,
        retention_days: int = 365,
        changed: Changed = _unchanged,
    ) -> None:
        self.after_store = after_store
        self.retention_days = retention_days
        """An order older than this raises no event (it would be deleted at once)."""
        self.changed = changed

    async def __call__(
        self,
        store: TenantStore,
        orders: list[tuple[str, Doc]],
        customers: list[Doc],
        index: OrderIndex | None,
        source: str,
        /,
    ) -> None:
        if index is None or not orders:
            return
        now = datetime.now(UTC)
        oldest = now - timedelta(days=self.retention_days)
        events, numbers = order_events(store.user_id, orders, customers, index, source, oldest, now)
        told = await store_events(store, events, numbers, self.changed)
        if told:
            await self.after_store(store, told)
