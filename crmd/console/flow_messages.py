"""A page of the messages a flow's send steps sent, for the flow's page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from crmd.console.paging import numbered
from crmd.store.tenant import TenantStore

PAGE = 20


async def flow_messages(
    request: web.Request, store: TenantStore, campaigns: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A page of the messages the flow's send steps sent, newest first, with their
    customers' names."""
    if not campaigns:
        return [], None
    where = {"campaignId": {"$in": campaigns}}
    total = await store["communication_log"].count_documents(where)
    page = numbered(request, total, PAGE)
    found = store["communication_log"].find(
        where,
        projection=dict.fromkeys(
            ("campaignId", "customerId", "recipient", "message", "status", "createdAt"), 1
        ),
        sort=[("createdAt", -1), ("_id", 1)],
        skip=(page.number - 1) * PAGE,
        limit=PAGE,
    )
    messages = [m async for m in found]
    people = await store["customers"].by_ids(
        sorted({m["customerId"] for m in messages}), projection={"name": 1, "email": 1}
    )
    named = {str(p["_id"]): p.get("name") or p.get("email") or "" for p in people}
    for m in messages:
        m["customerName"] = named.get(m["customerId"], m.get("recipient", ""))
    flow_id = request.match_info["id"]
    return messages, page.context(len(messages), "messages", f"/flows/{quote(flow_id)}")
