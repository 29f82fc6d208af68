"""Customers and orders: pages of the newest, a rule to filter them, and one customer
with their orders and the messages sent to them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing
from typing import Any
from urllib.parse import quote

from aiohttp import web

from crmd.auth.requests import tenant_id, tenant_store
from crmd.campaigns.engagement import what_it_did
from crmd.console.customer_flows import events_of, flow_messages, flows_of
from crmd.console.paging import numbered
from crmd.console.web import query_number, query_text, render
from crmd.errors import NotFound
from crmd.http.admission import asked_for, expensive_when
from crmd.ingest.persist import record_id
from crmd.messages import legacy_message_id, message_id
from crmd.segments.evaluate import evaluate
from crmd.segments.fields import CUSTOMERS, ORDERS, FieldSet
from crmd.segments.parse import RuleError, parse_rule
from crmd.segments.query import rule_now
from crmd.store.documents import Customer, Order, decode_record
from crmd.store.reads import find_in
from crmd.store.windows import FILTERED_SCAN, Window, newest

routes = web.RouteTableDef()
PAGE = 50
HIDDEN = ("userId", "_v", "uploadId")
ORDERS_SHOWN = 200
"""A customer's page shows at most this many of their orders."""
MESSAGES_FROM = 100
"""A customer's page looks for messages in this many of the newest campaigns."""


def rule_keep(
    rule: str, fields: FieldSet
) -> tuple[Callable[[dict[str, Any]], bool] | None, dict[str, Any] | None]:
    """The rule as a test of one record, or the error to show (message, column)."""
    if not rule:
        return None, None
    try:
        node = parse_rule(rule, fields)
    except RuleError as exc:
        return None, {"message": exc.message, "column": exc.column, "id": "rule-error"}
    now = rule_now()
    return (lambda doc: evaluate(node, doc, now)), None


def page_said(window: Window, what: str, filtered: bool) -> str:
    if filtered:
        return f"{len(window.items)} matching, among {window.scanned:,} {what} looked at"
    return f"{len(window.items)} {what}" if window.items else ""


async def _listing(request: web.Request, kind: str, fields: FieldSet) -> dict[str, Any]:
    """A page of ``kind``: by number ("51-100 of 200") when unfiltered; filtered by a
    rule, the next stretch from where the last one stopped looking."""
    store = tenant_store(request)
    rule = query_text(request, "rule", 2000).strip()
    before = query_number(request, "before")
    keep, error = rule_keep(rule, fields)
    window = Window()
    numbered_page = None
    if not rule:
        numbered_page = numbered(request, int((await store.tally())[kind]), PAGE)
    if error is None:
        top = await store.highest(kind)
        if numbered_page is not None:
            before = await numbered_page.start(store[kind], top)
        window = await newest(
            store[kind], top, before=before, limit=PAGE, keep=keep, max_scan=FILTERED_SCAN
        )
    for doc in window.items:
        for hidden in HIDDEN:
            doc.pop(hidden, None)
    base = f"/{kind}?rule={quote(rule)}" if rule else f"/{kind}"
    return {
        "items": window.items,
        "rule": rule,
        "error": error,
        "base": base,
        "numbered": (
            numbered_page.context(len(window.items), kind, base) if numbered_page else None
        ),
        "page": {
            "first": before is None,
            "next": window.next_before,
            "said": page_said(window, kind, bool(rule)),
        },
    }


@routes.get("/customers")
@expensive_when(asked_for("rule"))
async def customers(request: web.Request) -> web.Response:
    listing = await _listing(request, "customers", CUSTOMERS)
    return render(
        request,
        "customers.html",
        listing,
        section="Customers",
        status=422 if listing["error"] else 200,
    )


@routes.get("/orders")
async def orders(request: web.Request) -> web.Response:
    listing = await _listing(request, "orders", ORDERS)
    user = tenant_id(request)
    for order in listing["items"]:
        if order.get("customer_external_id"):
            order["customer"] = record_id(user, "customer", f"x:{order['customer_external_id']}")
        elif order.get("customerEmail"):
            order["customer"] = record_id(user, "customer", f"e:{order['customerEmail']}")
    wanted = sorted({o["customer"] for o in listing["items"] if o.get("customer")})
    found = await tenant_store(request)["customers"].by_ids(
        wanted, projection={"name": 1, "email": 1}
    )
    known = {str(c["_id"]): c for c in found}
    for order in listing["items"]:
        person = known.get(str(order.get("customer", "")))
        if person is None:  # an order whose customer is not (or not yet) stored
            order.pop("customer", None)
        else:
            order["customerName"] = person.get("name") or person.get("email") or ""
    return render(
        request, "orders.html", listing, section="Orders", status=422 if listing["error"] else 200
    )


@routes.get("/customers/{id}")
async def customer(request: web.Request) -> web.Response:
    store = tenant_store(request)
    found = await store["customers"].by_ids([request.match_info["id"][:64]])
    if not found:
        raise NotFound("no such customer")
    person = decode_record(found[0], Customer)
    orders: dict[str, Order] = {}
    keys = {"customer_external_id": person.customer_external_id, "customerEmail": person.email}
    for field, value in keys.items():
        if value:
            async with aclosing(find_in(store["orders"], field, [value])) as matching:
                async for order in matching:
                    orders[order["_id"]] = decode_record(order, Order)
                    if len(orders) >= ORDERS_SHOWN:
                        break
    recent = await newest(
        store["campaigns"],
        await store.highest("campaigns"),
        limit=MESSAGES_FROM,
        projection={"name": 1, "n": 1},
    )
    names = {str(c["_id"]): c["name"] for c in recent.items}
    fields = {
        **dict.fromkeys(("campaignId", "message", "status", "updatedAt", "times"), 1),
        **dict.fromkeys(("opens", "machineOpens", "clicks"), 1),
    }
    logs = await store["communication_log"].by_ids(
        [
            make(campaign, person.id)
            for campaign in names
            for make in (message_id, legacy_message_id)
        ],
        projection=fields,
    )
    runs = await flows_of(store, person.id)
    messages = [
        {**m, "campaignName": names.get(m["campaignId"], ""), "did": what_it_did(m)} for m in logs
    ]
    messages += [
        {**m, "did": what_it_did(m)} for m in await flow_messages(store, person.id, runs, fields)
    ]
    messages.sort(key=lambda m: m["updatedAt"], reverse=True)
    return render(
        request,
        "customer.html",
        {
            "title": person.name or person.email,
            "c": person,
            "orders": sorted(orders.values(), key=lambda o: o.orderDate, reverse=True),
            "messages": messages,
            "flows": runs,
            "events": await events_of(store, person.id),
        },
        section="Customers",
    )
