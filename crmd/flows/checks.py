"""Whether a flow's definition can run, each refusal naming its field as a JSON path
(``$.steps[2].branch.yes[0].wait``): sans-I/O, so every case is tested without a server.

msgspec has already checked the shapes (``crmd.flows.model``); this checks what a shape
cannot say: one kind per trigger, step and goal; rules that parse; waits that end;
steps that can be reached; templates that render; vendors that exist. What needs the
database (a trigger's segment) is checked by ``crmd.flows.service``.

A flow cannot loop: its steps are a tree (a branch holds its own two lists and goes on
after itself), so every customer's run ends after at most as many steps as the flow has.
A repeating reminder is a flow with ``entry: every``, entered again by its trigger.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import NamedTuple

from crmd.campaigns.experiments import InvalidTemplate, check_templates
from crmd.campaigns.vendors import Vendors
from crmd.errors import Unprocessable
from crmd.flows.model import Definition, FlowBody, Goal, Step, Trigger
from crmd.segments.fields import CUSTOMERS, CUSTOMERS_AND_EVENT, DATE, FieldSet
from crmd.segments.parse import RuleError, parse_rule

MAX_DEPTH = 8
"""Branches inside branches, at most."""
MAX_STEPS = 100
"""Steps in a flow, counting those inside branches."""
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION = re.compile(r"([0-9]{1,9})([smhdw])", re.ASCII)
TRIGGER_KINDS = ("event", "order", "segment", "anniversary")
STEP_KINDS = ("wait", "branch", "send", "addTo", "removeFrom", "exit")


class Limits(NamedTuple):
    max_wait_days: int = 365
    """``[flows] max_wait_days``."""
    max_depth: int = MAX_DEPTH
    max_steps: int = MAX_STEPS


class InvalidFlow(Unprocessable):
    code = "invalid_flow"

    def __init__(self, message: str, field: str, column: int | None = None) -> None:
        details: dict[str, object] = {"field": field}
        if column is not None:
            details["column"] = column
        super().__init__(message, details=details)


def duration_of(text: str) -> timedelta:
    """``30s``, ``15m``, ``2h``, ``3d``, ``1w`` as a timedelta; ValueError otherwise."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise ValueError(
            f"{text[:32]!r} is not a duration: write a whole number and a unit, "
            "s, m, h, d or w (30m, 2h, 3d)"
        )
    return timedelta(seconds=int(found[1]) * UNITS[found[2]])


def kind_of(step: Step) -> str:
    """The one kind a checked step has (``wait``, ``branch``...)."""
    return next(k for k in STEP_KINDS if getattr(step, k) is not None)


def trigger_key(trigger: Trigger) -> str:
    """How the engine finds the active flows an input concerns (the storage contract):
    ``event:<name>``, ``order``, ``segment:<id>`` or ``anniversary:<field>``."""
    if trigger.event is not None:
        return f"event:{trigger.event}"
    if trigger.order is not None:
        return "order"
    if trigger.segment is not None:
        return f"segment:{trigger.segment}"
    return f"anniversary:{trigger.anniversary}"


def walk(steps: Sequence[Step], path: str = "") -> Iterator[tuple[str, Step]]:
    """Every step with its path (``"0"``, ``"2.yes.0"``), in order, branches' arms
    after the branch."""
    for i, step in enumerate(steps):
        here = f"{path}.{i}" if path else str(i)
        yield here, step
        if step.branch is not None:
            yield from walk(step.branch.yes, f"{here}.yes")
            yield from walk(step.branch.no, f"{here}.no")


def check(
    body: FlowBody | Definition, vendors: Vendors, limits: Limits | None = None
) -> Definition:
    """The definition ``body`` holds, or InvalidFlow (422) naming the first field that
    cannot run (``details.field``, and ``details.column`` in a rule or a template)."""
    limits = limits or Limits()
    if body.entry == "once" and body.reentryDays > 0:
        raise InvalidFlow(
            "reentryDays is for entry: every (a flow entered once is never entered again)",
            "$.reentryDays",
        )
    _check_trigger(body.trigger)
    if body.goal is not None:
        _check_goal(body.goal)
    if body.quietHours is not None and body.quietHours.start == body.quietHours.end:
        raise InvalidFlow("quiet hours start and end at the same time", "$.quietHours")
    _check_steps(body.steps, "$.steps", 1, vendors, limits, _Count())
    return Definition(
        entry=body.entry,
        reentryDays=body.reentryDays,
        trigger=body.trigger,
        steps=body.steps,
        goal=body.goal,
        quietHours=body.quietHours,
    )


def _one_kind(value: object, kinds: Sequence[str], field: str, what: str) -> str:
    given = [k for k in kinds if getattr(value, k) not in (None, False)]
    if len(given) != 1:
        choices = ", ".join(kinds)
        found = f"{', '.join(given)} are set" if given else "none is set"
        raise InvalidFlow(f"a {what} has exactly one of {choices}: {found}", field)
    return given[0]


def _check_rule(rule: str, field: str, fields: FieldSet) -> None:
    try:
        parse_rule(rule, fields)
    except RuleError as exc:
        raise InvalidFlow(exc.message, field, exc.column) from None


def _check_trigger(trigger: Trigger) -> None:
    kind = _one_kind(trigger, TRIGGER_KINDS, "$.trigger", "trigger")
    fields = CUSTOMERS_AND_EVENT if kind in ("event", "order") else CUSTOMERS
    if trigger.where is not None:
        _check_rule(trigger.where, "$.trigger.where", fields)
    if kind == "anniversary":
        name = trigger.anniversary or ""
        known = CUSTOMERS.type_of(name)
        if known is not None and known != DATE:
            raise InvalidFlow(
                f"{name} is not a date field: an anniversary is of a date (lastActive, "
                "lastOrderAt, or a custom attribute holding dates)",
                "$.trigger.anniversary",
            )


def _check_goal(goal: Goal) -> None:
    if goal.event is None and not goal.order:
        raise InvalidFlow("a goal is an event (goal.event) or an order (order: true)", "$.goal")
    if goal.event is not None and goal.order:
        raise InvalidFlow(
            "a goal has exactly one of event, order: event and order are set", "$.goal"
        )
    if goal.where is not None:
        _check_rule(goal.where, "$.goal.where", CUSTOMERS_AND_EVENT)


class _Count:
    """Steps seen so far, across branches."""

    def __init__(self) -> None:
        self.steps = 0


def _check_steps(
    steps: Sequence[Step], field: str, depth: int, vendors: Vendors, limits: Limits, count: _Count
) -> None:
    for i, step in enumerate(steps):
        here = f"{field}[{i}]"
        count.steps += 1
        if count.steps > limits.max_steps:
            raise InvalidFlow(
                f"a flow has at most {limits.max_steps} steps, branches' included", here
            )
        if i > 0 and _ends(steps[:i]):
            raise InvalidFlow(
                "this step is unreachable: every way to it ends before it (an exit)", here
            )
        kind = _one_kind(step, STEP_KINDS, here, "step")
        if kind == "wait":
            _check_wait(step, f"{here}.wait", limits)
        elif kind == "send":
            _check_send(step, f"{here}.send", vendors)
        elif kind == "branch":
            _check_branch(step, f"{here}.branch", depth, vendors, limits, count)


def _check_branch(
    step: Step, field: str, depth: int, vendors: Vendors, limits: Limits, count: _Count
) -> None:
    branch = step.branch
    assert branch is not None
    if depth > limits.max_depth:
        raise InvalidFlow(f"branches nest at most {limits.max_depth} deep", field)
    if not branch.yes and not branch.no:
        raise InvalidFlow("a branch needs steps in yes, in no, or in both", field)
    _check_rule(branch.rule, f"{field}.rule", CUSTOMERS)
    _check_steps(branch.yes, f"{field}.yes", depth + 1, vendors, limits, count)
    _check_steps(branch.no, f"{field}.no", depth + 1, vendors, limits, count)


def _ends(steps: Sequence[Step]) -> bool:
    """No run goes past the end of ``steps``: it ends in an exit, or in a branch each
    of whose arms ends."""
    if not steps:
        return False
    last = steps[-1]
    if last.exit is not None:
        return True
    return last.branch is not None and _ends(last.branch.yes) and _ends(last.branch.no)


def _check_wait(step: Step, field: str, limits: Limits) -> None:
    if not isinstance(step.wait, str):
        return  # until a time of day: its pattern is the model's
    try:
        wait = duration_of(step.wait)
    except ValueError as exc:
        raise InvalidFlow(str(exc), field) from None
    if wait <= timedelta(0):
        raise InvalidFlow("a wait must be longer than nothing", field)
    if wait > timedelta(days=limits.max_wait_days):
        raise InvalidFlow(
            f"a wait is at most {limits.max_wait_days} days ([flows] max_wait_days)", field
        )


def _check_send(step: Step, field: str, vendors: Vendors) -> None:
    send = step.send
    assert send is not None
    try:
        check_templates(send.message, send.subject, send.html, where=f"{field}.")
    except InvalidTemplate as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        raise InvalidFlow(exc.message, f"{details['field']}", details.get("column")) from None
    chosen = send.vendor or vendors.default
    if chosen is None or chosen not in vendors.by_name:
        known = ", ".join(vendors.by_name) or "none is loaded"
        raise InvalidFlow(f"no vendor {chosen!r} is installed; vendors: {known}", f"{field}.vendor")
