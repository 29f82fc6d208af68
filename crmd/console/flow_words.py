"""A flow in words, as its pages say it: its trigger ("when event signup happens"), its
entry, its goal, its quiet hours, and each step a line with its path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crmd.console.formats import excerpt
from crmd.flows.checks import kind_of, walk
from crmd.flows.model import Definition, Goal, QuietHours, Step, Trigger

Money = Callable[[object], str]


def trigger_words(trigger: Trigger, segments: dict[str, str], money: Money = str) -> str:
    """``when event signup happens, where event.plan = "pro"``."""
    if trigger.event is not None:
        said = f"when event {trigger.event} happens"
    elif trigger.order is not None:
        said = "when a first order is stored" if trigger.order.first else "when an order is stored"
        if trigger.order.minAmount is not None:
            said += f" of at least {money(trigger.order.minAmount)}"
    elif trigger.segment is not None:
        name = segments.get(trigger.segment, "a segment that is gone")
        said = f"when a customer enters segment {name}"
    else:
        said = f"each year on the customer's {trigger.anniversary}"
    return f"{said}, where {trigger.where}" if trigger.where else said


def entry_words(definition: Definition) -> str:
    if definition.entry == "once":
        return "once per customer"
    if definition.reentryDays:
        days = definition.reentryDays
        return f"again and again, {days} day{'s' if days != 1 else ''} after the last entry"
    return "again and again, as soon as the last run has ended"


def goal_words(goal: Goal | None) -> str:
    if goal is None:
        return "none"
    said = f"event {goal.event}" if goal.event is not None else "an order"
    return f"{said}, where {goal.where}" if goal.where else said


def quiet_words(quiet: QuietHours | None) -> str:
    return "as [flows] quiet_hours says" if quiet is None else f"{quiet.start} to {quiet.end}"


def step_words(step: Step) -> str:
    """One step as a line: ``wait 2h``, ``send "Thanks, {name}" through dummy``."""
    kind = kind_of(step)
    if step.wait is not None:
        if isinstance(step.wait, str):
            return f"wait {step.wait}"
        return f"wait until {step.wait.until} in the customer's time zone"
    if step.send is not None:
        said = f"send \u201c{excerpt(step.send.message, 60)}\u201d"
        if step.send.subject:
            said += f" (subject \u201c{excerpt(step.send.subject, 40)}\u201d)"
        return said + (f" through {step.send.vendor}" if step.send.vendor else "")
    if step.branch is not None:
        return f"if {step.branch.rule}"
    change = step.addTo or step.removeFrom
    if change is not None:
        into = "to" if kind == "addTo" else "from"
        verb = "add" if kind == "addTo" else "remove"
        return f"{verb} \u201c{change.value}\u201d {into} list attrs.{change.field}"
    return "exit the flow"


@dataclass(frozen=True)
class Line:
    path: str
    depth: int
    """How deep in branches: 0 at the top."""
    arm: str
    """``yes`` or ``no`` for the first step of a branch's arm, else ""."""
    kind: str
    words: str


def step_lines(definition: Definition) -> list[Line]:
    """Every step of the definition as a line, in order, each with its path."""
    lines = []
    for path, step in walk(definition.steps):
        parts = path.split(".")
        arm = parts[-2] if len(parts) > 1 and parts[-1] == "0" else ""
        lines.append(Line(path, len(parts) // 2, arm, kind_of(step), step_words(step)))
    return lines
