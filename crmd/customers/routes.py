"""Customers and orders by API: posted in batches, a customer read and changed, and a
customer's data exported or erased (``export``, ``erasure``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec
from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.customers import erasure, export, service
from crmd.customers.erasure import ErasureReport
from crmd.customers.schema import CustomerChange, CustomerExport, CustomerProfile
from crmd.errors import NotFound
from crmd.http.bodies import json_body, raw_body, read_json
from crmd.http.describe import Link, Media, described
from crmd.http.idempotency import Claim, IdempotencyHeaders, run_once
from crmd.http.keys import CALLER, CUSTOMERS, DATABASE
from crmd.http.responses import json_response
from crmd.ingest.batches import BatchAccepted
from crmd.workspaces import audit

routes = web.RouteTableDef()

CUSTOMER_ITEM = {
    "type": "object",
    "description": "A customer: the keys are a CSV file's columns (their names or aliases: "
    "customer_external_id or externalId, name, email, phone, location, spend, visits, "
    "lastActive); any other key, and the keys of an 'attrs' object, are custom attributes.",
    "properties": {
        "externalId": {"type": "string"},
        "name": {"type": "string"},
        "email": {"type": "string"},
        "phone": {"type": "string"},
        "location": {"type": "string"},
        "spend": {"type": ["number", "string"]},
        "visits": {"type": ["integer", "string"]},
        "lastActive": {"type": "string"},
        "attrs": {"type": "object"},
    },
    "required": ["name", "email"],
    "examples": [{"externalId": "C1", "name": "Ada", "email": "ada@example.com", "spend": 1200}],
}
ORDER_ITEM = {
    "type": "object",
    "description": "An order: the keys are a CSV file's columns (customer_external_id or "
    "customerEmail, amount, orderDate, order_external_id, items).",
    "properties": {
        "customer_external_id": {"type": "string"},
        "customerEmail": {"type": "string"},
        "order_external_id": {"type": "string"},
        "amount": {"type": ["number", "string"]},
        "orderDate": {"type": "string"},
        "items": {"type": ["array", "string"], "items": {"type": ["string", "number"]}},
    },
    "required": ["amount", "orderDate"],
    "examples": [
        {"customer_external_id": "C1", "amount": 500, "orderDate": "2026-05-02", "items": ["hat"]}
    ],
}


def _batch_body(item: dict[str, Any], what: str) -> Media:
    schema = {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}
    return Media("application/json", schema, f"one {what} or a list of them")


async def _post_batch(request: web.Request, kind: str) -> web.Response:
    customers = request.app[CUSTOMERS]
    store = tenant_store(request)
    body = await raw_body(request)

    async def work(claim: Claim) -> tuple[int, BatchAccepted]:
        rows = customers.batches.check(await read_json(request), kind)
        return 202, await customers.batches.queue(store, kind, rows, claim.work_id)

    return await run_once(request, store, body, BatchAccepted, work)


FOLLOW = {"upload": Link("get_upload", {"id": "$response.body#/uploadId"})}


@routes.post("/api/v1/customers")
@described(
    "Add or update customers (one, or a batch)",
    tag="customers",
    headers=IdempotencyHeaders,
    body=_batch_body(CUSTOMER_ITEM, "customer"),
    ok={202: BatchAccepted},
    errors=(409,),  # the same Idempotency-Key's request is still being handled
    links=FOLLOW,
)
async def post_customers(request: web.Request) -> web.Response:
    """Each customer is checked as a CSV row is; one bad item refuses the batch (422,
    each bad item's ``index`` and ``field`` in ``details``), and a batch over ``[ingest]
    max_batch`` items is 413. The customers are stored in the background, by their
    external id (else their email), the later one winning: follow ``GET
    /api/v1/uploads/{uploadId}``."""
    return await _post_batch(request, "customers")


@routes.post("/api/v1/orders")
@described(
    "Add orders (one, or a batch)",
    tag="customers",
    headers=IdempotencyHeaders,
    body=_batch_body(ORDER_ITEM, "order"),
    ok={202: BatchAccepted},
    errors=(409,),
    links=FOLLOW,
)
async def post_orders(request: web.Request) -> web.Response:
    """Each order is checked as a CSV row is, and names its customer by external id or
    email; one bad item refuses the batch (422), over ``[ingest] max_batch`` is 413.
    Stored in the background (an order with the same ``order_external_id`` is replaced),
    with its customer's order figures: follow ``GET /api/v1/uploads/{uploadId}``."""
    return await _post_batch(request, "orders")


@routes.get("/api/v1/customers/{id}")
@described(
    "A customer, with its orders, events, messages and flows", tag="customers", ok=CustomerProfile
)
async def get_customer(request: web.Request) -> web.Response:
    """``id`` is crmd's id of the customer, or else its own (external) id. The lists
    are the latest 100 of each."""
    found = await service.profile(tenant_store(request), request.match_info["id"])
    return json_response(found)


class CustomerRecord(msgspec.Struct):
    customer: dict[str, Any]
    """The record as it now stands."""


@routes.patch("/api/v1/customers/{id}")
@described(
    "Change a customer's name, email, phone, location or attributes",
    tag="customers",
    body=CustomerChange,
    ok=CustomerRecord,
    errors=(409,),  # the email of a customer with no external id is its key
)
async def patch_customer(request: web.Request) -> web.Response:
    """Each value is checked as a CSV row's is (422 naming the field, or an unknown
    one); ``attrs`` sets the attributes it names (null removes one). The email of a
    customer that has no external id is its key and cannot change (409)."""
    change = await json_body(request, CustomerChange)
    record = await request.app[CUSTOMERS].change(
        tenant_store(request), request.match_info["id"], change
    )
    return json_response(CustomerRecord(record))


@routes.get("/api/v1/customers/{id}/export")
@described(
    "Everything crmd holds about a customer, as a JSON file (GDPR articles 15 and 20)",
    tag="customers",
    ok=CustomerExport,
)
async def export_customer(request: web.Request) -> web.Response:
    """``id`` is crmd's id of the customer, or else its own (external) id. The record,
    every order, event and message (with its status, reason, receipt times, opens and
    clicks), the flows they are or were in and the suppression entry naming their
    address; ``format`` names the shape (``crmd.customer-export/1``). Answered as a
    download (``Content-Disposition: attachment``)."""
    found = await export.export(tenant_store(request), request.match_info["id"])
    response = json_response(found)
    name = quote(str(found.customer.get("id", "customer")), safe="")
    response.headers["Content-Disposition"] = f'attachment; filename="customer-{name}.json"'
    return response


@routes.delete("/api/v1/customers/{id}")
@described(
    "Erase a customer (GDPR article 17): record and events deleted, the rest anonymised",
    tag="customers",
    ok=ErasureReport,
)
async def erase_customer(request: web.Request) -> web.Response:
    """``id`` is crmd's id of the customer, or else its own (external) id. The record
    and events are deleted; orders are kept detached from the person (revenue figures
    do not change); messages, attributions and flow runs are kept with the address,
    name and text taken out (campaign counts do not change); the address stays on the
    suppression list only as a keyed hash, so a later import of it is never messaged.
    A request cut short is finished by sending it again; once done, the customer is
    404. Answers what was deleted and anonymised, by collection."""
    customers = request.app[CUSTOMERS]
    try:
        report = await erasure.erase(
            tenant_store(request), request.match_info["id"], customers.erased, customers.versions
        )
    except NotFound:  # another workspace's, or gone: refused, and recorded so
        await erasure.record_refusal(request.app[DATABASE], request.get(CALLER))
        raise
    response = json_response(report)
    response[audit.OBJECT] = report.erasedAs  # their own id would name them in the log
    return response
