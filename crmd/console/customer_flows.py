"""What a customer's page shows of flows and events: the flows they are in (or were),
each with its version, where they are in it and when their next step is due, and their
latest events with their properties cut short."""

from __future__ import annotations

from typing import Any

import msgspec
from bson import ObjectId

from crmd.console.flow_words import step_words
from crmd.flows.model import Definition, FlowState
from crmd.flows.paths import step_at
from crmd.messages import message_id
from crmd.store.documents import decode
from crmd.store.tenant import TenantStore

STATES_SHOWN = 20
EVENTS_SHOWN = 20
PROPERTIES_SHOWN = 120
"""Characters of an event's properties a row shows."""


async def flows_of(store: TenantStore, customer_id: str) -> list[dict[str, Any]]:
    """The customer's latest runs through flows, newest first (``flow_states`` on its
    {userId, customerId, status} index), with each flow's name and the next step in
    words (read from the version the customer is in)."""
    found = store["flow_states"].find({"customerId": customer_id}).sort("updatedAt", -1)
    states = [msgspec.convert(d, FlowState) async for d in found.limit(STATES_SHOWN)]
    if not states:
        return []
    flow_ids = sorted({s.flowId for s in states})
    flows = await store["flows"].by_ids(
        [ObjectId(f) for f in flow_ids if ObjectId.is_valid(f)], projection={"name": 1}
    )
    names = {str(f["_id"]): f["name"] for f in flows}
    wanted = sorted({f"{s.flowId}:{s.version}" for s in states})
    versions = await store["flow_versions"].by_ids(wanted, projection={"definition": 1})
    definitions = {str(v["_id"]): decode(v["definition"], Definition) for v in versions}
    shown = []
    for s in states:
        definition = definitions.get(f"{s.flowId}:{s.version}")
        step = step_at(definition.steps, s.at) if definition and s.at else None
        shown.append(
            {
                "state": s,
                "flowName": names.get(s.flowId, "(a flow that is gone)"),
                "next": step_words(step) if step is not None else "",
            }
        )
    return shown


async def flow_messages(
    store: TenantStore, customer_id: str, runs: list[dict[str, Any]], fields: dict[str, int]
) -> list[dict[str, Any]]:
    """The messages the customer's flows sent them (the flows' send campaigns, found on
    their {userId, flowId} index, and each run's message id in each: by id, not by a
    scan), each named by its flow and step and linked to the flow's page."""
    keys: dict[str, set[str]] = {}
    for run in runs:
        state = run["state"]
        key = customer_id if state.entry <= 1 else f"{customer_id}#{state.entry}"
        keys.setdefault(state.flowId, set()).add(key)
    if not keys:
        return []
    found = store["campaigns"].find(
        {"flowId": {"$in": sorted(keys)}, "kind": "flow"}, projection={"name": 1, "flowId": 1}
    )
    campaigns = {str(c["_id"]): c async for c in found}
    wanted = [
        message_id(campaign, key)
        for campaign, c in campaigns.items()
        for key in sorted(keys.get(c["flowId"], ()))
    ]
    logs = await store["communication_log"].by_ids(wanted, projection=fields)
    return [
        {
            **m,
            "campaignName": campaigns[m["campaignId"]]["name"],
            "href": f"/flows/{campaigns[m['campaignId']]['flowId']}",
        }
        for m in logs
    ]


async def events_of(store: TenantStore, customer_id: str) -> list[dict[str, Any]]:
    """The customer's latest events, newest first, their properties as short JSON."""
    found = store["events"].find(
        {"customerId": customer_id}, projection={"name": 1, "properties": 1, "timestamp": 1}
    )
    events = [e async for e in found.sort("timestamp", -1).limit(EVENTS_SHOWN)]
    for e in events:
        text = msgspec.json.encode(e.get("properties") or {}, enc_hook=str).decode()
        if len(text) > PROPERTIES_SHOWN:
            text = text[: PROPERTIES_SHOWN - 1] + "\u2026"
        e["said"] = "" if text == "{}" else text
    return events
