"""The new-campaign form read into the API's body (``crmd.campaigns.schema.CampaignBody``)
and checked as the API will check it (limits, templates), and the API's field paths
(``$.holdout``, ``$.variants[1].message``) read back into the form's field names, so
that a mistake is shown beside the field that made it.

The form's message, subject and HTML are variant A; slots 1 to 4 (B to E) add more.
A form field is named as the API's path is, with dashes: ``abTest-testPercent``,
``variants-2-subject``. An empty slot is no variant; an empty number is the server's
default."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from crmd.campaigns import compose
from crmd.campaigns.schema import AbTestBody, CampaignBody, VariantBody
from crmd.campaigns.service import InvalidTemplate
from crmd.campaigns.template import TemplateError, parse_template
from crmd.errors import CrmdError, Unprocessable

SLOTS = range(1, 5)
PARTS = ("message", "subject", "html")
LETTERS = "ABCDE"
_VARIANT_PATH = re.compile(r"variants\[(\d+)\](?:\.(message|subject|html))?")


def slot_field(slot: int, part: str) -> str:
    """The form's field for a variant's part: slot 0 (A) is the campaign's own."""
    return part if slot == 0 else f"variants-{slot}-{part}"


def slots_used(values: dict[str, str]) -> list[int]:
    """The slots that make variants, A first: only A when no other is filled in."""
    return [0] + [s for s in SLOTS if any(values.get(slot_field(s, p)) for p in PARTS)]


def number(values: dict[str, str], name: str, label: str, integer: bool = False) -> Any:
    """A number field: None when empty (the server's default), 422 naming the field
    when it is not a number."""
    text = values.get(name, "").strip().removesuffix("%").strip()
    if not text:
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise Unprocessable(
            f"{label} must be {kind}", code="invalid_body", details={"field": f"$.{name}"}
        ) from None


def body_fields(values: dict[str, str]) -> dict[str, Any]:
    """The body's holdout, attribution days and, with more than one slot filled in,
    its variants and their test (the campaign's own templates then left empty: the
    variants give them)."""
    fields: dict[str, Any] = {
        "holdout": number(values, "holdout", "the holdout"),
        "attributionDays": number(values, "attributionDays", "attribution days", integer=True),
    }
    slots = slots_used(values)
    if len(slots) < 2:
        return fields
    fields["variants"] = [
        VariantBody(**{p: values.get(slot_field(s, p), "") for p in PARTS}) for s in slots
    ]
    test: dict[str, Any] = {
        "mode": values.get("abTest-mode") or "split",
        "metric": values.get("abTest-metric") or "clicks",
    }
    for name, label in (("testPercent", "the test share"), ("waitMinutes", "the wait")):
        given = number(values, f"abTest-{name}", label)
        if given is not None:
            test[name] = given
    fields["abTest"] = AbTestBody(**test)
    return fields | {"message": "", "subject": "", "html": ""}


def form_field(path: str, slots: list[int]) -> str:
    """The form's field for an API path: ``$.variants[1].message`` is the second
    variant's message, in whichever slot it was typed; ``$.abTest.metric`` is
    ``abTest-metric``."""
    name = path.removeprefix("$.").removeprefix("$")
    found = _VARIANT_PATH.fullmatch(name)
    if found:
        index = int(found[1])
        slot = slots[index] if index < len(slots) else index
        return slot_field(slot, found[2] or "message")
    if name.startswith("variants"):
        return "variants"
    return name.replace(".", "-")


LABELS = {
    "name": "Name",
    "rule": "Rule",
    "message": "Message",
    "subject": "Subject",
    "html": "HTML body",
    "intent": "Intent",
    "vendor": "Vendor",
    "scheduledAt": "Send at",
    "holdout": "Holdout",
    "attributionDays": "Attribution days",
    "abTest-mode": "A/B test, how",
    "abTest-testPercent": "Test share",
    "abTest-waitMinutes": "Wait",
    "abTest-metric": "Metric",
    "variants": "Variants",
}
PLACED = frozenset(
    {*LABELS, *(slot_field(s, p) for s in SLOTS for p in PARTS)} - {"vendor", "scheduledAt"}
)
"""The fields beside which the form shows a mistake (any other's: at its top)."""


def field_label(field: str) -> str:
    """A form field as a person names it: ``Variant C, subject``."""
    found = re.fullmatch(r"variants-(\d)-(\w+)", field)
    if found:
        return f"Variant {LETTERS[int(found[1])]}, {LABELS[found[2]].lower()}"
    return LABELS.get(field, field)


def ab_open(values: dict[str, str], *errors: dict[str, Any] | None) -> bool:
    """The A/B section starts open: something is in it, or a mistake is."""
    named = [str(e.get("field", "")) for e in errors if e]
    return (
        len(slots_used(values)) > 1
        or any(values.get(f) for f in ("abTest-testPercent", "abTest-waitMinutes"))
        or any(f.startswith(("variants", "abTest")) for f in named)
    )


def template_error(exc: TemplateError | CrmdError, values: dict[str, str]) -> dict[str, Any]:
    """A template's mistake, marked at its column beside the field it is in."""
    if isinstance(exc, TemplateError):
        column, field = exc.column, "message"
    else:
        column, field = exc.details.get("column"), str(exc.details.get("field", "message"))
    return {
        "message": exc.message,
        "column": column,
        "id": "template-error",
        "field": form_field(field, slots_used(values)),
    }


def subject_template(text: str) -> list[Any]:
    """The subject's template; its mistake said of the subject, not of the message."""
    try:
        return compose.parse_subject(text) if text else []
    except TemplateError as exc:
        raise InvalidTemplate(exc, "subject") from None


def check_templates(body: CampaignBody) -> None:
    """The templates parse (as ``Campaigns.create`` will check), before the question:
    the campaign's, or each variant's, its mistake said of its field."""
    texts = [("", body.message, body.subject, body.html)]
    if body.variants:
        texts = [
            (f"$.variants[{i}].", v.message, v.subject, v.html) for i, v in enumerate(body.variants)
        ]
    for path, message, subject, html in texts:
        checks = (("message", message, parse_template), ("subject", subject, compose.parse_subject))
        for part, text, parse in (*checks, ("html", html, compose.parse_html)):
            try:
                if text or part == "message":
                    parse(text)
            except TemplateError as exc:
                raise InvalidTemplate(exc, f"{path}{part}") from None


def check_limits(body: CampaignBody, slots: list[int]) -> None:
    """The same limits as the API's body (name and message required, lengths), the
    mistake named by the form's field (a variant's by the slot it was typed in)."""
    try:
        msgspec.convert(msgspec.to_builtins(body), CampaignBody)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `")
        field = form_field(path.rstrip("`") or "form", slots)
        said = f"{field_label(field)}: {message}"
        raise Unprocessable(said, details={"field": field}) from None
