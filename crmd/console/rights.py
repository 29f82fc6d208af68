"""A customer's data rights from their page: their data as a JSON file, and their
erasure, confirmed by typing their address (``crmd.customers.export``, ``erasure``)."""

from __future__ import annotations

from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.console.web import form, see_other
from crmd.customers import erasure, export
from crmd.customers.service import find_customer
from crmd.errors import NotFound
from crmd.http.keys import CALLER, CUSTOMERS, DATABASE
from crmd.http.responses import json_response
from crmd.workspaces import audit
from crmd.workspaces.guard import audited

routes = web.RouteTableDef()
CUSTOMER = "/customers/{id:[0-9a-f]{24}}"
MAX_TYPED = 320


@routes.get(CUSTOMER + "/export")
async def download(request: web.Request) -> web.Response:
    found = await export.export(tenant_store(request), request.match_info["id"])
    audited(request, request.match_info["id"])
    response = json_response(found)
    filename = f"customer-{request.match_info['id']}.json"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@routes.post(CUSTOMER + "/erase")
async def erase(request: web.Request) -> web.Response:
    """Only when the address typed is the customer's: an erasure cannot be undone."""
    fields = await form(request)
    store = tenant_store(request)
    customer_id = request.match_info["id"]
    try:
        person = await find_customer(store, customer_id)
    except NotFound:  # another workspace's, or gone: refused, and recorded so
        await erasure.record_refusal(request.app[DATABASE], request.get(CALLER))
        raise
    typed = fields.get("confirm", "")[:MAX_TYPED].strip().casefold()
    if not person.email or typed != person.email.casefold():
        here = f"/customers/{customer_id}"
        return see_other(here, "Type the customer's address to confirm.", problem=True)
    customers = request.app[CUSTOMERS]
    report = await erasure.erase(store, customer_id, customers.erased, customers.versions)
    anonymised, deleted = report.anonymised, report.deleted
    said = (
        f"Customer erased: {deleted.get('events', 0)} events deleted, "
        f"{anonymised.get('communication_log', 0)} messages and "
        f"{anonymised.get('orders', 0)} orders kept without their name or address; "
        "the address stays on the suppression list only as a hash."
    )
    response = see_other("/customers", said)
    response[audit.OBJECT] = report.erasedAs  # their own id would name them in the log
    return response
