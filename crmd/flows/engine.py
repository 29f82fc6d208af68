"""A customer's run through a flow: its steps, one at a time, each exactly once.

A state (``flow_states``) names the next step's path (``at``) and how many steps ran
(``n``). Running the step at ``n`` is three writes, in this order:

1. its record in ``flow_steps``, whose id is the state's and ``n`` (the step's
   idempotency key), holding what it decided: a branch's arm, a send's message id, a
   wait's end, and the path that comes next. Inserted, or found there when a crash
   came after it: then what it decided stands, so a step run again decides nothing new;
2. its effect, which is idempotent by that key: a send writes the message's log with an
   id derived from it and queues it (the sender skips what it handed over), a list
   change is ``$addToSet`` or ``$pull``;
3. the state moved on, on condition that it is still open at ``n``: of two runs of one
   state (a redelivered job), one moves it and the other stops.

A kill -9 anywhere repeats at most one step's effect, which changes nothing. A wait
sets ``dueAt`` and leaves the state ``waiting``: the clock hands due states back to
this engine in batches (``crmd.flows.timers``), so a waiting customer costs one
document, not a task.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog
from bson import ObjectId
from pymongo.errors import DuplicateKeyError, WriteError
from redis.asyncio import Redis

from crmd.campaigns import one as send
from crmd.campaigns.vendors import Vendors
from crmd.errors import CrmdError
from crmd.flows import paths
from crmd.flows.checks import duration_of, kind_of
from crmd.flows.model import Definition, FlowState, Send, StateStatus, Step, WaitUntil
from crmd.flows.rules import holds
from crmd.flows.timing import Quiet, clock_time, scaled, until_next, zone_of
from crmd.store.documents import Doc
from crmd.store.tenant import TenantStore
from crmd.suppressions.links import UnsubscribeLinks

log = structlog.get_logger(__name__)

MAX_STEPS_PER_RUN = 200
"""Steps one run takes before it yields (a flow has at most 100, and no loop)."""
PAUSED_RECHECK = timedelta(seconds=60)
STATUS_SECONDS = 1.0
OPEN = [StateStatus.ACTIVE, StateStatus.WAITING]


@dataclass(frozen=True)
class FlowSettings:
    time_scale: float = 1.0
    quiet_hours: str = ""
    timezone: str = "UTC"


Emit = Callable[[TenantStore, str, dict[str, Any]], Awaitable[None]]


async def _no_emit(store: TenantStore, kind: str, data: dict[str, Any]) -> None:
    return None


@dataclass
class Engine:
    redis: Redis
    dispatch: str
    vendors: Vendors
    links: UnsubscribeLinks | None = None
    settings: FlowSettings = field(default_factory=FlowSettings)
    emit: Emit = _no_emit
    steps_run: Any = None
    """``crmd_flow_steps`` (by kind), counted as each step's record is written."""
    _versions: dict[str, Definition] = field(default_factory=dict)
    _statuses: dict[str, tuple[str, float]] = field(default_factory=dict)

    async def definition(self, store: TenantStore, flow_id: str, version: int) -> Definition:
        """A version of a flow (never changed once written: kept in memory)."""
        key = f"{flow_id}:{version}"
        found = self._versions.get(key)
        if found is None:
            doc = await store["flow_versions"].find_one({"_id": key})
            if doc is None:
                raise LookupError(f"flow {flow_id} has no version {version}")
            found = msgspec.convert(doc["definition"], Definition)
            if len(self._versions) > 2048:
                self._versions.clear()
            self._versions[key] = found
        return found

    async def run(self, store: TenantStore, state_id: str) -> None:
        """Run the state's steps until it waits or leaves the flow."""
        found = await store["flow_states"].find_one({"_id": state_id})
        if found is None:
            return
        state: FlowState | None = msgspec.convert(found, FlowState)
        for _ in range(MAX_STEPS_PER_RUN):
            if state is None or state.status != StateStatus.ACTIVE:
                return  # waiting (a copy of a job), converted, done
            state = await self.step(store, state)

    async def flow_status(self, store: TenantStore, flow_id: str) -> str:
        """The flow's status, read at most once a second per flow: a pause or an
        archive takes hold within a second."""
        now = time.monotonic()
        known = self._statuses.get(flow_id)
        if known is not None and known[1] > now:
            return known[0]
        flow = await store["flows"].find_one({"_id": ObjectId(flow_id)}, projection={"status": 1})
        status = str(flow["status"]) if flow else "archived"
        if len(self._statuses) > 4096:
            self._statuses.clear()
        self._statuses[flow_id] = (status, now + STATUS_SECONDS)
        return status

    async def step(self, store: TenantStore, state: FlowState) -> FlowState | None:
        """Run the state's next step; the state after it when another may follow at
        once (None when it waits, has left, or another run moved it first)."""
        now = datetime.now(UTC)
        status = await self.flow_status(store, state.flowId)
        if status == "paused":
            await self._move(
                store, state, {"status": StateStatus.WAITING, "dueAt": now + PAUSED_RECHECK}
            )
            return None
        if status == "archived":
            await self._leave(store, state, StateStatus.EXITED, "the flow was archived")
            return None
        definition = await self.definition(store, state.flowId, state.version)
        step = paths.step_at(definition.steps, state.at) if state.at else None
        if step is None:
            await self._leave(store, state, StateStatus.DONE, "")
            return None
        key = f"{state.id}:{state.n}"
        customer = await self._customer(store, state.customerId)
        if customer is None:
            await self._leave(store, state, StateStatus.EXITED, "the customer is gone")
            return None
        if step.send is not None and state.quietServed != state.n:
            wait = self._quiet(definition, customer, now)
            if wait is not None:  # sent when quiet hours end: the step has not run yet
                held = {"status": StateStatus.WAITING, "dueAt": now + wait, "quietServed": state.n}
                await self._move(store, state, held)
                return None
        record = await self._decide(store, state, definition, step, customer, key, now)
        try:
            await self._apply(store, state, step, record, customer, key)
        except (CrmdError, WriteError) as exc:
            # A vendor not installed any more; a list attribute that holds a text.
            why = exc.message if isinstance(exc, CrmdError) else str(exc)[:200]
            log.warning("flow.step_failed", state=state.id, path=state.at, error=why)
            await self._leave(store, state, StateStatus.EXITED, f"step {state.at}: {why}")
            return None
        moved: Doc = {"at": record["next"], "n": state.n + 1}
        if record["kind"] == "exit":
            await self._leave(store, state, StateStatus.EXITED, "an exit step", moved)
            return None
        if record["kind"] == "wait":
            moved |= {"status": StateStatus.WAITING, "dueAt": record["dueAt"]}
            await self._move(store, state, moved)
            return None
        if not record["next"]:
            await self._leave(store, state, StateStatus.DONE, "", moved)
            return None
        if not await self._move(store, state, moved):
            return None  # another run moved it first, or the goal ended it
        return msgspec.structs.replace(state, at=record["next"], n=state.n + 1)

    async def _decide(
        self,
        store: TenantStore,
        state: FlowState,
        definition: Definition,
        step: Step,
        customer: Doc,
        key: str,
        now: datetime,
    ) -> Doc:
        """The step's record: inserted now, or the one a run before a crash inserted."""
        kind = kind_of(step)
        record: Doc = {
            "_id": key,
            "flowId": state.flowId,
            "version": state.version,
            "path": state.at,
            "kind": kind,
            "customerId": state.customerId,
            "at": now,
            "outcome": "",
            "next": paths.after(definition.steps, state.at),
        }
        if step.wait is not None:
            record["dueAt"] = now + self._wait(step.wait, customer, now)
        elif step.branch is not None:
            properties = state.trigger.get("properties")
            event = properties if isinstance(properties, dict) else {}
            arm = "yes" if holds(step.branch.rule, customer, event, now) else "no"
            record["outcome"] = arm
            record["next"] = paths.arm_start(definition.steps, state.at, arm)
        elif step.send is not None:
            reachable = customer.get("email") or customer.get("phone")
            record["outcome"] = self._message_id(store, state, step.send) if reachable else ""
        try:
            await store["flow_steps"].insert_one(record)
            if self.steps_run is not None:
                self.steps_run.labels(kind).inc()
        except DuplicateKeyError:
            before = await store["flow_steps"].find_one({"_id": key})
            if before is not None:
                return before
        return record

    async def _apply(
        self, store: TenantStore, state: FlowState, step: Step, record: Doc, customer: Doc, key: str
    ) -> None:
        if step.send is not None:
            if not record["outcome"]:
                return  # no address to send to: the step is recorded, and the run goes on
            campaign = await self._send_campaign(store, state, step.send)
            entry = send.log_of(store, campaign, customer, self._send_key(state), self.links)
            await send.queue(store, self.redis, self.dispatch, campaign, [entry])
        elif step.addTo is not None:
            await store["customers"].update_one(
                {"_id": state.customerId},
                {"$addToSet": {f"attrs.{step.addTo.field}": step.addTo.value}},
            )
        elif step.removeFrom is not None:
            await store["customers"].update_one(
                {"_id": state.customerId},
                {"$pull": {f"attrs.{step.removeFrom.field}": step.removeFrom.value}},
            )

    def _send_key(self, state: FlowState) -> str:
        """The customer's first run sends under the customer's id (the id attribution
        reads); a later entry's under its number."""
        return state.customerId if state.entry <= 1 else f"{state.customerId}#{state.entry}"

    def _message_id(self, store: TenantStore, state: FlowState, step: Send) -> str:
        from crmd.messages import message_id

        return message_id(str(self._campaign_id(store, state)), self._send_key(state))

    def _campaign_id(self, store: TenantStore, state: FlowState) -> ObjectId:
        return send.derived_id(store.user_id, "flow", state.flowId, str(state.version), state.at)

    async def _send_campaign(self, store: TenantStore, state: FlowState, step: Send) -> Doc:
        campaign_id = self._campaign_id(store, state)
        found = await store["campaigns"].find_one({"_id": campaign_id})
        if found is not None:
            return found
        vendor = self.vendors.get(step.vendor).name
        flow = await store["flows"].find_one(
            {"_id": ObjectId(state.flowId)}, projection={"name": 1}
        )
        name = f"{flow['name'] if flow else 'flow'} · v{state.version} · step {state.at}"
        await send.message_campaign(
            store,
            campaign_id,
            kind="flow",
            name=name,
            message=step.message,
            subject=step.subject,
            html=step.html,
            vendor=vendor,
            extra={"flowId": state.flowId, "flowVersion": state.version, "flowStep": state.at},
        )
        created = await store["campaigns"].find_one({"_id": campaign_id})
        assert created is not None
        return created

    def _wait(self, wait: str | WaitUntil, customer: Doc, now: datetime) -> timedelta:
        if isinstance(wait, WaitUntil):
            zone = zone_of(customer, self.settings.timezone)
            real = until_next(now, clock_time(wait.until), zone)
        else:
            real = duration_of(wait)  # checked when the flow was saved
        return scaled(real, self.settings.time_scale)

    def _quiet(self, definition: Definition, customer: Doc, now: datetime) -> timedelta | None:
        written = definition.quietHours
        quiet = (
            Quiet(clock_time(written.start), clock_time(written.end))
            if written is not None
            else Quiet.parse(self.settings.quiet_hours)
        )
        if quiet is None:
            return None
        left = quiet.left(now, zone_of(customer, self.settings.timezone))
        return scaled(left, self.settings.time_scale) if left else None

    async def _customer(self, store: TenantStore, customer_id: str) -> Doc | None:
        found = await store["customers"].find_one({"_id": customer_id})
        return send.customer_values(found) if found is not None else None

    async def _move(self, store: TenantStore, state: FlowState, fields: Doc) -> bool:
        moved = await store["flow_states"].update_one(
            {"_id": state.id, "n": state.n, "status": {"$in": OPEN}},
            {"$set": {**fields, "updatedAt": datetime.now(UTC)}},
        )
        return moved.modified_count == 1

    async def _leave(
        self,
        store: TenantStore,
        state: FlowState,
        status: str,
        reason: str,
        fields: Doc | None = None,
    ) -> None:
        """The state leaves the flow (nothing follows)."""
        if await self._move(
            store, state, {**(fields or {}), "status": status, "reason": reason, "dueAt": None}
        ):
            await self.emit(
                store,
                "flow.exited",
                {
                    "stateId": state.id,
                    "flowId": state.flowId,
                    "version": state.version,
                    "customerId": state.customerId,
                    "status": status,
                    "reason": reason,
                },
            )
        return None
