"""A flow survives kill -9 of its worker at any moment: of a few hundred customers,
those its trigger admits go through trigger → wait → branch → send → wait → list →
send, some of them reaching the flow's goal during a wait, while the worker (the
``flows``, ``clock`` and ``dispatch`` actors, ``tests.flows.flow_actor``) is killed three
times, each time at a point of its own, at a moment drawn at random: while the clock
hands due timers over, after a send step's record and before its effect, after a send
step's effect and before the state moves on. A new process takes over each time (the
dead one's stream entries reclaimed, the states it left active queued again by the
clock's stranded check). Afterwards every customer got exactly the messages the flow
owes them, each once, nobody else got any, no step ran twice and every state has left
the flow."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmd.app import Crmd
from crmd.config import Config
from crmd.flows.actor import AT_ONCE
from crmd.services.embedded import Urls
from crmd.testing.servers import make_test_config
from tests.campaigns.test_effect import load_customers
from tests.flows.engine_helpers import event, put, stored_flow, user_of

pytestmark = pytest.mark.slow  # kill -9 tests

REPO = Path(__file__).resolve().parents[2]
SCALE = 3600.0
"""An hour of waiting passes in a second."""
CUSTOMERS = 300
"""C0..C299, spending 100..399, with 1..5 visits (``customers_csv``); those with one visit
(C0, C5, C10...: 60) enter the flow."""
FLOW = {
    "trigger": {"event": "signup", "where": "visits = 1"},
    "steps": [
        {"wait": "3h"},
        {
            "branch": {
                "rule": "spend >= 250",
                "yes": [{"send": {"message": "Gold thanks, {name}"}}],
                "no": [{"send": {"message": "Thanks, {name}"}}],
            }
        },
        {"wait": "3h"},
        {"addTo": {"field": "tags", "value": "welcomed"}},
        {"send": {"message": "Welcome aboard, {name}"}},
    ],
    "goal": {"event": "purchase"},
}
FIRST_WAIT_OVER, SECOND_WAIT_OVER = "1", "3"
"""Where a state waiting in the first or the second wait goes next."""
WHOLE_RUN = 6
"""Steps of a run to the end: wait, branch, send, wait, addTo, send."""
WORKER_TIMEOUT = 180
"""Seconds a worker may take before the test fails (far more than it needs: the whole test
took 106 s with the machine's two cores at a load of 11)."""
TIMED_OUT = 1000
STRANDED_AFTER = 6
"""Seconds before the clock queues again an active state that has not moved (two minutes
in crmd): short, so that the states a kill left active with no job go on within the test,
not shorter, because a state whose job waits behind others is queued again as well."""
SAFE_MARGIN = timedelta(seconds=1.5)
"""A goal is posted for a waiting customer only with at least this left of the wait, so
that it lands inside the wait whatever the machine's load."""


@pytest.fixture
def config(services: Urls, port: int) -> Config:
    return make_test_config(services, server={"port": port}, flows={"time_scale": SCALE})


def expected_steps(i: int) -> list[str]:
    arm = "1.yes.0" if 100 + i >= 250 else "1.no.0"
    return ["0", "1", arm, "2", "3", "4"]


def expected_text(path: str, i: int) -> str:
    opening = {"1.yes.0": "Gold thanks", "1.no.0": "Thanks", "4": "Welcome aboard"}[path]
    return f"{opening}, Customer {i}"


def worker(config: Config, flow: str, *die: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.flows.flow_actor",
        config.mongodb.url,
        config.mongodb.database,
        config.redis.url,
        config.redis.stream_prefix,
        flow,
        *die,
    ]


async def run(argv: list[str], consumer: str) -> int:
    """The worker's exit code (-9: it killed itself where it was told to)."""
    env = {
        **os.environ,
        "VENDOR_RATE": "1000",
        "CONSUMER": consumer,
        "STRANDED_AFTER": str(STRANDED_AFTER),
    }
    try:
        done = await asyncio.to_thread(
            subprocess.run, argv, timeout=WORKER_TIMEOUT, cwd=REPO, env=env
        )
    except subprocess.TimeoutExpired:
        return TIMED_OUT
    return done.returncode


async def where(system: Crmd, flow: str) -> Counter[tuple[str, str, int]]:
    """How many of the flow's states are in each status, at each step, after n steps."""
    states = [s async for s in system.db.flow_states.find({"flowId": flow})]
    return Counter((s["status"], s["at"], s["n"]) for s in states)


@dataclass
class Goals:
    """Posts a ``purchase`` for the chosen customers while they wait: the first group's
    in the first wait, the second's in the second, as the events actor of another
    process would put it to the flows."""

    system: Crmd
    user: str
    first: set[str]
    second: set[str]
    posted: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    """The customers whose goal was posted: the steps their run had taken, and when."""

    async def post_due(self) -> None:
        now = datetime.now(UTC)
        chosen = []
        async for state in self.system.db.flow_states.find(
            {"customerId": {"$in": list((self.first | self.second) - set(self.posted))}}
        ):
            wanted = FIRST_WAIT_OVER if state["customerId"] in self.first else SECOND_WAIT_OVER
            due = state["dueAt"].replace(tzinfo=UTC) if state.get("dueAt") else now
            if state["status"] == "waiting" and state["at"] == wanted and due > now + SAFE_MARGIN:
                chosen.append(state)
        if not chosen:
            return
        at = datetime.now(UTC)
        await put(
            self.system,
            self.user,
            [event(s["customerId"], "purchase", f"p-{s['customerId']}") for s in chosen],
        )
        for state in chosen:
            self.posted[state["customerId"]] = (state["n"], at)


@contextlib.asynccontextmanager
async def posting(goals: Goals) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            await goals.post_due()
            await asyncio.sleep(0.25)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def clamp(left: int) -> int:
    """The highest kill point to draw from: at most 20, and one at least."""
    return max(1, min(20, left))


async def sends_left(system: Crmd, flow: str, surely: set[str]) -> int:
    """Sends the flow will still record, at least: two to each customer no goal is
    chosen for (``surely``), less those recorded."""
    steps = system.db.flow_steps.find({"flowId": flow, "kind": "send"})
    done = Counter([record["customerId"] async for record in steps])
    return sum(max(0, 2 - done[customer]) for customer in surely)


async def kill_note(system: Crmd, point: str) -> dict[str, Any]:
    found = await system.db.kills.find_one({"point": point})
    assert found is not None, f"the worker died at {point} without saying where"
    return found


async def check_stranded(system: Crmd, note: dict[str, Any]) -> None:
    """Killed between making due states active and queueing them: they are active, with
    no job, until the stranded check queues them (but for any that a stale copy of its job,
    queued again while it waited behind others, ran in the meantime)."""
    states = [s async for s in system.db.flow_states.find({"_id": {"$in": note["states"]}})]
    assert len(states) == len(note["states"]) > 0
    assert any(s["status"] == "active" for s in states), states


async def check_recorded(system: Crmd, note: dict[str, Any]) -> None:
    """Killed after a send's record: the record is there, its message not, and the
    state has not moved."""
    record = await system.db.flow_steps.find_one({"_id": f"{note['state']}:{note['n']}"})
    assert record is not None and record["kind"] == "send"
    state = await system.db.flow_states.find_one({"_id": note["state"]})
    assert state is not None and (state["n"], state["status"]) == (note["n"], "active")


async def check_applied(system: Crmd, note: dict[str, Any]) -> None:
    """Killed after a send's effect: its message is written and the state has not moved."""
    record = await system.db.flow_steps.find_one({"_id": f"{note['state']}:{note['n']}"})
    assert record is not None and record["kind"] == note["kind"]
    state = await system.db.flow_states.find_one({"_id": note["state"]})
    assert state is not None and (state["n"], state["status"]) == (note["n"], "active")
    assert await system.db.communication_log.find_one({"_id": record["outcome"]})


async def test_a_flow_killed_three_times_runs_every_step_once_and_sends_each_message_once(
    client: Any, auth: Any, system: Crmd, config: Config, ingesting: Any
) -> None:
    seed = int(os.environ.get("CRMD_TEST_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"seed {seed} (CRMD_TEST_SEED={seed} runs these kills again)")
    await load_customers(client, auth, CUSTOMERS)
    user = await user_of(system)
    ids = {
        d["customer_external_id"]: str(d["_id"])
        async for d in system.db.customers.find({"userId": user})
    }
    number = {cid: int(external[1:]) for external, cid in ids.items()}
    flow = await stored_flow(system, user, FLOW, name="Welcome")
    entered = {ids[f"C{i}"] for i in range(0, CUSTOMERS, 5)}
    signups = [event(ids[f"C{i}"], "signup", f"s{i}") for i in range(CUSTOMERS)]
    assert await put(system, user, signups) == len(entered) == 60
    goals = Goals(  # a purchase for a quarter of them in each wait, when it can be in time
        system,
        user,
        first={ids[f"C{i}"] for i in range(5, CUSTOMERS, 20)},
        second={ids[f"C{i}"] for i in range(15, CUSTOMERS, 20)},
    )

    # A kill point is drawn as its worker starts, from the sends still sure to come (one
    # drawn from a fixed range could lie past the last of them: the worker then ends
    # without dying). A worker killed at its nth record may have recorded up to
    # AT_ONCE - 1 more meanwhile: the second kill leaves the third half of the rest.
    surely = entered - goals.first - goals.second
    kills = [
        ("firing", lambda left: rng.randint(1, 3), check_stranded),
        ("recorded", lambda left: rng.randint(1, clamp((left - AT_ONCE) // 2)), check_recorded),
        ("applied", lambda left: rng.randint(1, clamp(left)), check_applied),
    ]
    async with posting(goals):
        for k, (point, draw, check) in enumerate(kills, 1):
            call = draw(await sends_left(system, flow, surely))
            code = await run(worker(config, flow, point, str(call)), f"worker-{k}")
            left = await where(system, flow)
            assert code == -9, f"seed {seed}: worker {k} ({point} {call}) exited {code}: {left}"
            await check(system, await kill_note(system, point))
        code = await run(worker(config, flow), "worker-4")
        assert code == 0, f"seed {seed}: the last worker exited {code}: {await where(system, flow)}"

    states = {s["customerId"]: s async for s in system.db.flow_states.find({"flowId": flow})}
    assert set(states) == entered, "nobody else entered"
    converted_first = {c for c in goals.posted if c in goals.first}
    converted_second = {c for c in goals.posted if c in goals.second}
    assert len(converted_first) >= 5 and len(converted_second) >= 5, goals.posted

    # Every state left the flow: at its end, or converted in the wait its goal came in.
    for customer, state in states.items():
        if customer in goals.posted:
            taken, _ = goals.posted[customer]
            assert (state["status"], state["n"]) == ("converted", taken), state
            assert taken == (1 if customer in goals.first else 4)
        else:
            assert (state["status"], state["n"], state["at"]) == ("done", WHOLE_RUN, ""), state

    # Each step once: a record per (state, n) for n below the state's n, on the path the
    # customer's fields choose.
    steps: dict[str, list[dict[str, Any]]] = defaultdict(list)
    async for record in system.db.flow_steps.find({"flowId": flow}):
        steps[record["customerId"]].append(record)
    assert set(steps) == entered
    for customer, records in steps.items():
        state = states[customer]
        assert sorted(r["_id"] for r in records) == sorted(
            f"{state['_id']}:{n}" for n in range(state["n"])
        )
        ran = [r["path"] for r in sorted(records, key=lambda r: int(r["_id"].rsplit(":", 1)[1]))]
        assert ran == expected_steps(number[customer])[: state["n"]], (customer, ran)

    # Each message once, to exactly those whose run reached its send step, with its text.
    campaigns = {
        str(c["_id"]): c["flowStep"] async for c in system.db.campaigns.find({"flowId": flow})
    }
    assert set(campaigns.values()) == {"1.yes.0", "1.no.0", "4"}
    logs = [
        d async for d in system.db.communication_log.find({"campaignId": {"$in": list(campaigns)}})
    ]
    sent = Counter((campaigns[d["campaignId"]], d["customerId"]) for d in logs)
    owed = {
        (path, customer)
        for customer, state in states.items()
        for path in expected_steps(number[customer])[: state["n"]]
        if path in ("1.yes.0", "1.no.0", "4")
    }
    assert set(sent) == owed and set(sent.values()) == {1}
    assert await system.db.communication_log.count_documents({}) == len(logs), "no other message"
    for d in logs:
        assert d["message"].startswith(
            expected_text(campaigns[d["campaignId"]], number[d["customerId"]])
        )
        assert d["vendorMessageId"], d
        if d["customerId"] in goals.posted:  # nothing after the goal
            assert d["createdAt"].replace(tzinfo=UTC) < goals.posted[d["customerId"]][1]
    handed = [h["messageId"] async for h in system.db.handed.find({})]
    assert len(handed) == len(set(handed)) == len(logs), "the vendor got each message once"
    assert set(handed) == {d["_id"] for d in logs}

    # The list attribute holds the value once, for those who got that far.
    tagged = {
        str(c["_id"]): c["attrs"]["tags"]
        async for c in system.db.customers.find({"attrs.tags": {"$exists": True}})
    }
    assert tagged == {c: ["welcomed"] for c in entered - set(goals.posted)}
