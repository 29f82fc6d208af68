"""Flows written straight into the store (as the definitions' routes store them), and
events put to the flows as the events actor puts them: the engine's tests need neither
route."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from bson import ObjectId

from crmd.app import Crmd
from crmd.config import Config
from crmd.flows.checks import trigger_key
from crmd.flows.intake import Happened, on_events
from crmd.flows.model import Definition
from crmd.services.embedded import Urls
from crmd.store.tenant import TenantStore
from crmd.testing.servers import make_test_config

SCALE = 3600.0
"""An hour of waiting passes in a second."""


def flows_config(services: Urls, port: int, cap: int) -> Config:
    """A config whose flows run at ``SCALE``, with a clock that ticks five times a
    second, a dummy vendor that fails nothing, and a cap of ``cap`` messages a day."""
    return make_test_config(
        services,
        server={"port": port},
        plugins={
            "dummy_vendor": {"delay_min": 0.01, "delay_max": 0.05, "seed": 7, "failure_rate": 0}
        },
        campaigns={"clock_interval_seconds": 0.2, "clock_lease_seconds": 3.0},
        flows={"time_scale": SCALE, "max_messages_per_customer_per_day": cap},
    )


async def running_flows(delivering: Crmd) -> Crmd:
    """The events, flows and clock actors running beside dispatch and receipts."""
    supervisor = delivering.start(("events", "flows", "clock"))
    assert await supervisor.wait_healthy(10)
    return delivering


async def user_of(system: Crmd, email: str = "ops@example.com") -> str:
    found = await system.db.users.find_one({"email": email})
    assert found is not None
    return str(found["_id"])


async def stored_flow(system: Crmd, user: str, definition: dict[str, Any], name: str = "f") -> str:
    """An active flow at version 1 with ``definition`` (checked by the model only)."""
    checked = msgspec.convert({"entry": "once", "reentryDays": 0, **definition}, Definition)
    body = msgspec.to_builtins(checked)
    flow_id = ObjectId()
    key = trigger_key(checked.trigger)
    now = datetime.now(UTC)
    await system.db.flow_versions.insert_one(
        {
            "_id": f"{flow_id}:1",
            "userId": user,
            "flowId": str(flow_id),
            "version": 1,
            "definition": body,
            "createdAt": now,
        }
    )
    await system.db.flows.insert_one(
        {
            "_id": flow_id,
            "userId": user,
            "name": name,
            "status": "active",
            "version": 1,
            "definition": body,
            "triggerKey": key,
            "createdAt": now,
            "updatedAt": now,
        }
    )
    return str(flow_id)


async def put(system: Crmd, user: str, events: list[Happened]) -> int:
    store = TenantStore(system.db, user)
    return await on_events(store, system.flow_engine, system.flow_queue, events)


def event(customer: str, name: str, eid: str, **properties: Any) -> Happened:
    return Happened(customer, name, properties, eid, datetime.now(UTC))
