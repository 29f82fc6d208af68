"""The API's mistakes on the flow editor's form: a field path
(``$.steps[2].branch.yes[0].wait``) read back into the form's field name, so that a
mistake is shown beside the field that made it, and said in words at the form's top."""

from __future__ import annotations

import re
from typing import Any

from crmd.console.flow_form import LABELS, STEP_FIELDS, step_field

_STEP_PATH = re.compile(r"steps\[(\d+)\]((?:\.branch\.(?:yes|no)\[\d+\])*)(.*)")
_ARM = re.compile(r"\.branch\.(yes|no)\[(\d+)\]")
_STEP_PART = {
    "": "kind",
    ".wait": "wait",
    ".wait.until": "until",
    ".send": "message",
    ".send.message": "message",
    ".send.subject": "subject",
    ".send.html": "html",
    ".send.vendor": "vendor",
    ".branch": "kind",
    ".branch.rule": "rule",
    ".addTo": "list",
    ".addTo.field": "list",
    ".addTo.value": "item",
    ".removeFrom": "list",
    ".removeFrom.field": "list",
    ".removeFrom.value": "item",
}
_TOP_PATH = {
    "name": "name",
    "status": "name",
    "entry": "entry",
    "reentryDays": "reentryDays",
    "trigger": "trigger",
    "trigger.event": "triggerEvent",
    "trigger.order": "orderMin",
    "trigger.order.first": "orderFirst",
    "trigger.order.minAmount": "orderMin",
    "trigger.segment": "triggerSegment",
    "trigger.anniversary": "triggerAnniversary",
    "trigger.where": "triggerWhere",
    "goal": "goal",
    "goal.event": "goalEvent",
    "goal.order": "goal",
    "goal.where": "goalWhere",
    "quietHours": "quietStart",
    "quietHours.start": "quietStart",
    "quietHours.end": "quietEnd",
    "steps": "steps",
}
_PATTERN_SAID = {
    "triggerEvent": "letters, digits and _ . : - only",
    "goalEvent": "letters, digits and _ . : - only",
    "triggerAnniversary": "a field name: letters, digits and _, not starting with a digit",
    "list": "a field name: letters, digits and _, not starting with a digit",
    "until": "a time of day as HH:MM, 00:00 to 23:59",
    "quietStart": "a time of day as HH:MM, 00:00 to 23:59",
    "quietEnd": "a time of day as HH:MM, 00:00 to 23:59",
}


def said_key(key: str) -> str:
    """A step's key as a person names it: ``2-yes-0`` is "step 3, if yes: step 1"."""
    parts = key.split("-")
    words = [f"step {int(parts[0]) + 1}"]
    for arm, index in zip(parts[1::2], parts[2::2], strict=True):
        words.append(f"if {arm}: step {int(index) + 1}")
    return ", ".join(words)


def key_of(path: str) -> str:
    """A step's API path (``2.yes.0``) as the form's key (``2-yes-0``)."""
    return path.replace(".", "-")


# The API's mistakes beside the form's fields


def form_field(path: str) -> str:
    """The form's field for an API path: ``$.steps[2].branch.yes[0].wait`` is
    ``step-2-yes-0-wait``; ``$.trigger.where`` is ``triggerWhere``; anything the form
    has no field for, ``form`` (said at its top)."""
    name = path.removeprefix("$").removeprefix(".")
    found = _STEP_PATH.fullmatch(name)
    if found:
        key = found[1] + "".join(f"-{arm}-{i}" for arm, i in _ARM.findall(found[2]))
        return step_field(key, _STEP_PART.get(found[3], "kind"))
    return _TOP_PATH.get(name, "form")


def field_said(form_name: str) -> str:
    """A form field as a person names it: "Step 3, if yes: step 1, wait for"."""
    found = re.fullmatch(r"step-([0-9a-z-]+)-([a-z]+)", form_name)
    if found and found[2] in STEP_FIELDS:
        return f"{said_key(found[1]).capitalize()}, {LABELS[found[2]]}"
    return LABELS.get(form_name, "The flow")


def mistake(message: str, path: str, column: Any = None) -> dict[str, Any]:
    """What the form shows of a refusal: beside ``field`` and, in words, at its top."""
    name = form_field(path)
    own = name.rsplit("-", 1)[-1] if name.startswith("step-") else name
    if message.startswith("Expected `str` of length >= 1"):
        message = "fill this in"
    elif message.startswith("Expected `str` matching regex") and own in _PATTERN_SAID:
        message = f"write {_PATTERN_SAID[own]}"
    said = f"{field_said(name)}: {message}"
    if column and "column" not in message:
        said += f" (at column {column})"
    return {"message": message, "field": name, "said": said, "column": column}
