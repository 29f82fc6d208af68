"""The flow editor's form read into the API's body (``crmd.flows.model.FlowBody``) and a
flow written back into the form; the API's field paths
(``$.steps[2].branch.yes[0].wait``) read back into the form's field names, so that a
mistake is shown beside the field that made it; and the editor's own moves (add,
remove, move a step), done on the form's values so that they work without script.

A step's fields are named by its **key**, its path with dashes (``2-yes-0``):
``step-2-yes-0-kind``, ``step-2-yes-0-wait``. Every row sends the fields of every
kind (the page shows only the chosen kind's); only the chosen kind's are read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from crmd.errors import BadRequest
from crmd.flows.checks import InvalidFlow
from crmd.flows.model import Definition, FlowBody, Step

STEP_FIELDS = (
    *("kind", "wait", "until", "message", "subject", "html", "vendor", "rule", "list"),
    "item",
)
KINDS = (
    ("wait", "Wait"),
    ("send", "Send a message"),
    ("branch", "Branch on a rule"),
    ("addTo", "Add to a list"),
    ("removeFrom", "Remove from a list"),
    ("exit", "Exit"),
)
TRIGGERS = (
    ("event", "An event"),
    ("order", "An order"),
    ("segment", "Entering a segment"),
    ("anniversary", "A date's anniversary"),
)
TOP_FIELDS = (
    *("name", "entry", "reentryDays", "trigger", "triggerEvent", "orderFirst", "orderMin"),
    *("triggerSegment", "triggerAnniversary", "triggerWhere", "goal", "goalEvent"),
    *("goalWhere", "quietStart", "quietEnd"),
)
MAX_FORM_FIELDS = 1200
"""100 steps (the most a flow has) of ``STEP_FIELDS`` each, and the flow's own."""
MAX_BRANCH_DEPTH = 3
"""Branches inside branches the editor offers (the API takes deeper ones)."""
_KEY = re.compile(r"(?:[0-9]{1,3}-(?:yes|no)-){0,8}[0-9]{1,3}")
_LIST = re.compile(r"(?:[0-9]{1,3}-(?:yes|no)-){0,8}")
LABELS = {
    "name": "Name",
    "entry": "Entry",
    "reentryDays": "Days before entering again",
    "trigger": "Trigger",
    "triggerEvent": "Event name",
    "orderFirst": "First order only",
    "orderMin": "Minimum amount",
    "triggerSegment": "Segment",
    "triggerAnniversary": "Date field",
    "triggerWhere": "Only when (rule)",
    "goal": "Goal",
    "goalEvent": "Goal event",
    "goalWhere": "Goal rule",
    "quietStart": "Quiet hours start",
    "quietEnd": "Quiet hours end",
    "steps": "Steps",
    "kind": "what it does",
    "wait": "wait for",
    "until": "wait until",
    "message": "message",
    "subject": "subject",
    "html": "HTML body",
    "vendor": "vendor",
    "rule": "rule",
    "list": "list",
    "item": "value",
}


def step_field(key: str, name: str) -> str:
    return f"step-{key}-{name}"


# The form's values as a tree of rows, and back


@dataclass
class Row:
    fields: dict[str, str]
    yes: list[Row] = field(default_factory=list)
    no: list[Row] = field(default_factory=list)


def rows_of(values: dict[str, str], prefix: str = "") -> list[Row]:
    """The steps the form holds under ``prefix`` (a list: ``""`` the top one,
    ``2-yes-`` step 3's yes arm), in order."""
    rows = []
    for i in range(101):
        key = f"{prefix}{i}"
        if step_field(key, "kind") not in values:
            break
        row = Row({n: values.get(step_field(key, n), "") for n in STEP_FIELDS})
        row.yes = rows_of(values, f"{key}-yes-")
        row.no = rows_of(values, f"{key}-no-")
        rows.append(row)
    return rows


def flat(rows: list[Row], prefix: str = "") -> dict[str, str]:
    """Rows as the form's step fields."""
    out: dict[str, str] = {}
    for i, row in enumerate(rows):
        key = f"{prefix}{i}"
        out |= {step_field(key, n): v for n, v in row.fields.items()}
        out |= flat(row.yes, f"{key}-yes-") | flat(row.no, f"{key}-no-")
    return out


def top_values(values: dict[str, str]) -> dict[str, str]:
    return {name: values.get(name, "") for name in TOP_FIELDS}


def _list_at(rows: list[Row], prefix: str) -> list[Row]:
    """The list ``prefix`` names (``""``, ``2-yes-``); 400 when there is none."""
    parts = prefix.rstrip("-").split("-") if prefix else []
    current = rows
    for index, arm in zip(parts[::2], parts[1::2], strict=True):
        i = int(index)
        if i >= len(current):
            raise BadRequest("no such step in the form")
        current = current[i].yes if arm == "yes" else current[i].no
    return current


def moved(values: dict[str, str], action: str) -> dict[str, str]:
    """The form after one of the editor's moves: ``add:<list>`` (a new wait at the end
    of the list: ``add:`` the top one, ``add:2-yes-`` an arm), ``remove:<key>``,
    ``up:<key>``, ``down:<key>``."""
    verb, _, target = action.partition(":")
    rows = rows_of(values)
    if verb == "add" and _LIST.fullmatch(target):
        _list_at(rows, target).append(Row(dict.fromkeys(STEP_FIELDS, "") | {"kind": "wait"}))
    elif verb in ("remove", "up", "down") and _KEY.fullmatch(target):
        prefix, _, index = target.rpartition("-")
        within = _list_at(rows, f"{prefix}-" if prefix else "")
        i = int(index)
        if i >= len(within):
            raise BadRequest("no such step in the form")
        if verb == "remove":
            within.pop(i)
        else:
            j = i - 1 if verb == "up" else i + 1
            if 0 <= j < len(within):
                within[i], within[j] = within[j], within[i]
    else:
        raise BadRequest("unknown action")
    return top_values(values) | flat(rows)


# The form read into the API's body


def _number(values: dict[str, str], name: str, path: str, integer: bool = False) -> Any:
    text = values.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise InvalidFlow(f"{LABELS[name].lower()} must be {kind}", path) from None


def _trigger(values: dict[str, str]) -> dict[str, Any]:
    kind = values.get("trigger", "")
    trigger: dict[str, Any]
    if kind == "event":
        trigger = {"event": values.get("triggerEvent", "").strip()}
    elif kind == "order":
        minimum = _number(values, "orderMin", "$.trigger.order.minAmount")
        trigger = {"order": {"first": values.get("orderFirst") == "on", "minAmount": minimum}}
    elif kind == "segment":
        trigger = {"segment": values.get("triggerSegment", "")}
        if not trigger["segment"]:
            raise InvalidFlow("choose a segment", "$.trigger.segment")
    elif kind == "anniversary":
        trigger = {"anniversary": values.get("triggerAnniversary", "").strip()}
    else:
        raise InvalidFlow("choose what puts a customer in the flow", "$.trigger")
    where = values.get("triggerWhere", "").strip()
    return trigger | ({"where": where} if where else {})


def _goal(values: dict[str, str]) -> dict[str, Any] | None:
    kind = values.get("goal", "")
    where = values.get("goalWhere", "").strip()
    goal: dict[str, Any]
    if kind == "event":
        goal = {"event": values.get("goalEvent", "").strip()}
    elif kind == "order":
        goal = {"order": True}
    elif not kind:
        return None
    else:
        raise InvalidFlow("a goal is an event or an order", "$.goal")
    return goal | ({"where": where} if where else {})


def _quiet(values: dict[str, str]) -> dict[str, str] | None:
    start, end = values.get("quietStart", "").strip(), values.get("quietEnd", "").strip()
    if not start and not end:
        return None
    return {"start": start, "end": end}


def _step(row: Row, path: str) -> dict[str, Any]:
    got = {k: v.strip() if k not in ("message", "html") else v for k, v in row.fields.items()}
    kind = got["kind"]
    if kind == "wait":
        if got["wait"] and got["until"]:
            raise InvalidFlow(
                "give how long to wait or a time of day to wait until, not both", f"{path}.wait"
            )
        if got["until"]:
            return {"wait": {"until": got["until"]}}
        if not got["wait"]:
            raise InvalidFlow(
                "give how long to wait (30m, 2h, 3d) or a time of day to wait until",
                f"{path}.wait",
            )
        return {"wait": got["wait"]}
    if kind == "send":
        send = {k: got[k] for k in ("message", "subject", "html")}
        return {"send": send | {"vendor": got["vendor"] or None}}
    if kind == "branch":
        return {
            "branch": {
                "rule": got["rule"],
                "yes": [_step(r, f"{path}.branch.yes[{i}]") for i, r in enumerate(row.yes)],
                "no": [_step(r, f"{path}.branch.no[{i}]") for i, r in enumerate(row.no)],
            }
        }
    if kind in ("addTo", "removeFrom"):
        return {kind: {"field": got["list"], "value": got["item"]}}
    if kind == "exit":
        return {"exit": {}}
    raise InvalidFlow("choose what the step does", path)


def body_of(values: dict[str, str], status: str = "draft") -> FlowBody:
    """The form as the API's body, or InvalidFlow (422) naming the field by its API
    path, as the service names it."""
    body = {
        "name": values.get("name", "").strip(),
        "status": status,
        "entry": values.get("entry") or "once",
        "reentryDays": _number(values, "reentryDays", "$.reentryDays", integer=True) or 0,
        "trigger": _trigger(values),
        "steps": [_step(r, f"$.steps[{i}]") for i, r in enumerate(rows_of(values))],
        "goal": _goal(values),
        "quietHours": _quiet(values),
    }
    if not body["steps"]:
        raise InvalidFlow("a flow needs at least one step: add one", "$.steps")
    try:
        return msgspec.convert(body, FlowBody)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `")
        raise InvalidFlow(message, path.rstrip("`") or "$") from None


# A flow written into the form


def values_of(name: str, definition: Definition) -> dict[str, str]:
    """A flow's definition as the form's values (what the editor starts from)."""
    trigger, goal, quiet = definition.trigger, definition.goal, definition.quietHours
    values = dict.fromkeys(TOP_FIELDS, "")
    values |= {
        "name": name,
        "entry": definition.entry,
        "reentryDays": str(definition.reentryDays) if definition.reentryDays else "",
        "triggerWhere": trigger.where or "",
    }
    if trigger.event is not None:
        values |= {"trigger": "event", "triggerEvent": trigger.event}
    elif trigger.order is not None:
        minimum = trigger.order.minAmount
        values |= {
            "trigger": "order",
            "orderFirst": "on" if trigger.order.first else "",
            "orderMin": "" if minimum is None else f"{minimum:g}",
        }
    elif trigger.segment is not None:
        values |= {"trigger": "segment", "triggerSegment": trigger.segment}
    elif trigger.anniversary is not None:
        values |= {"trigger": "anniversary", "triggerAnniversary": trigger.anniversary}
    if goal is not None:
        values |= {
            "goal": "event" if goal.event is not None else "order",
            "goalEvent": goal.event or "",
            "goalWhere": goal.where or "",
        }
    if quiet is not None:
        values |= {"quietStart": quiet.start, "quietEnd": quiet.end}
    return values | flat([_row(s) for s in definition.steps])


def _row(step: Step) -> Row:
    fields = dict.fromkeys(STEP_FIELDS, "")
    if step.wait is not None:
        fields["kind"] = "wait"
        if isinstance(step.wait, str):
            fields["wait"] = step.wait
        else:
            fields["until"] = step.wait.until
    elif step.send is not None:
        fields |= {"kind": "send", "message": step.send.message, "subject": step.send.subject}
        fields |= {"html": step.send.html, "vendor": step.send.vendor or ""}
    elif step.branch is not None:
        fields |= {"kind": "branch", "rule": step.branch.rule}
        return Row(fields, [_row(s) for s in step.branch.yes], [_row(s) for s in step.branch.no])
    elif step.addTo is not None or step.removeFrom is not None:
        change = step.addTo or step.removeFrom
        assert change is not None
        kind = "addTo" if step.addTo is not None else "removeFrom"
        fields |= {"kind": kind, "list": change.field, "item": change.value}
    else:
        fields["kind"] = "exit"
    return Row(fields)
