"""An event as posted, checked: pure, values in, the event or its problems out.

Every problem names the item's index and its field, so that a batch's caller can mend
each one; a batch with any problem is refused whole (nothing of it is stored).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec

from crmd.config import EventsConfig
from crmd.http.schema import Body
from crmd.segments.fields import EVENT_NAME as NAME
from crmd.segments.fields import EVENT_NAME_RULE as NAME_RULE

PROPERTY_KEY = re.compile(r"[^.$\x00][^.\x00]{0,127}")
"""A property's name: up to 128 characters, no dot, no NUL, not starting with ``$``
(MongoDB's operators and paths)."""
FUTURE = timedelta(hours=1)
"""How far ahead of the server's clock a timestamp may be (clocks disagree)."""
INT64 = 2**63
MAX_ERRORS = 100
"""Problems reported at most per request (the first ones, in item order)."""


class PostedEvent(Body):
    """One event, as ``POST /api/v1/events`` takes it."""

    customer: Annotated[
        str, msgspec.Meta(min_length=1, max_length=320, examples=["c1@example.com"])
    ]
    """The customer's external id, e-mail or crmd id, looked up in that order."""
    name: Annotated[str, msgspec.Meta(pattern=f"^{NAME.pattern}$", examples=["signed_up"])]
    properties: dict[str, Any] = {}
    """Any JSON object, within ``[events] max_properties_bytes`` and ``max_depth``."""
    timestamp: datetime | None = None
    """When it happened (ISO 8601; no zone means UTC); absent: now. At most an hour
    ahead, and not older than ``[events] retention_days``."""
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    """The caller's id: an event posted again with the same id is stored once."""


class Problem(msgspec.Struct, frozen=True):
    index: int
    """The item's place in the posted array (0 for a single object)."""
    field: str
    message: str


def depth_of(value: Any, limit: int) -> int:
    """How deeply ``value`` nests objects and arrays (a scalar is 0), counted no further
    than ``limit + 1``."""
    if isinstance(value, dict | list) and limit >= 0:
        items = value.values() if isinstance(value, dict) else value
        return 1 + max((depth_of(v, limit - 1) for v in items), default=0)
    return 0


def property_problem(value: Any, path: str = "properties") -> str | None:
    """What is wrong with a property value (a name MongoDB would misread, an integer
    out of 64 bits), or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not PROPERTY_KEY.fullmatch(key):
                shown = key[:40].encode("unicode_escape").decode()
                return (
                    f"{path} has the name {shown!r}: a property's name is 1 to 128 "
                    "characters, without '.', NUL or a leading '$'"
                )
            if found := property_problem(item, f"{path}.{key}"):
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if found := property_problem(item, f"{path}[{i}]"):
                return found
    elif isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        return f"{path} holds an integer larger than 64 bits"
    return None


def check_item(
    index: int, raw: Any, settings: EventsConfig, now: datetime
) -> PostedEvent | list[Problem]:
    """The posted event, or its problems."""
    if not isinstance(raw, dict):
        return [Problem(index, "$", "an event is a JSON object")]
    try:
        event = msgspec.convert(raw, PostedEvent)
    except msgspec.ValidationError as exc:
        return [_problem(index, exc, raw)]
    problems = []
    size = len(msgspec.json.encode(event.properties))
    if size > settings.max_properties_bytes:
        problems.append(
            Problem(
                index,
                "properties",
                f"properties take {size:,} bytes as JSON; at most "
                f"{settings.max_properties_bytes:,} are allowed",
            )
        )
    elif depth_of(event.properties, settings.max_depth) > settings.max_depth:
        problems.append(
            Problem(
                index,
                "properties",
                f"properties nest objects and arrays deeper than {settings.max_depth} levels",
            )
        )
    elif found := property_problem(event.properties):
        problems.append(Problem(index, "properties", found))
    if event.timestamp is not None:
        at = as_utc(event.timestamp)
        oldest = now - timedelta(days=settings.retention_days)
        if at > now + FUTURE:
            problems.append(
                Problem(index, "timestamp", "timestamp is more than an hour in the future")
            )
        elif at < oldest:
            problems.append(
                Problem(
                    index,
                    "timestamp",
                    f"timestamp is older than the {settings.retention_days} days events "
                    "are kept ([events] retention_days)",
                )
            )
    return problems or event


def as_utc(at: datetime) -> datetime:
    """A naive moment is UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _problem(index: int, exc: msgspec.ValidationError, raw: dict[str, Any]) -> Problem:
    """msgspec's complaint about one item, its field named without the ``$.``."""
    message, at, path = str(exc).rpartition(" - at `")
    if not at:
        message, path = str(exc), "$"
    field = path.removesuffix("`").removeprefix("$").removeprefix(".") or "$"
    if message.startswith("Object contains unknown field `"):
        field = message.split("`")[1][:60]
    elif field == "$" and message.startswith("Object missing required field `"):
        field = message.split("`")[1]
    if field == "name" and isinstance(raw.get("name"), str):
        message = f"name must be {NAME_RULE}"
    return Problem(index, field, message)


def items_of(body: Any, max_batch: int) -> Sequence[Any] | Problem:
    """The posted items: one object, or an array of 1 to ``max_batch``."""
    if isinstance(body, dict):
        return [body]
    if not isinstance(body, list):
        return Problem(0, "$", "send one event (a JSON object) or an array of events")
    if not body:
        return Problem(0, "$", "the array holds no event")
    if len(body) > max_batch:
        return Problem(
            max_batch,
            "$",
            f"at most {max_batch:,} events a request ([events] max_batch); "
            f"this one has {len(body):,}",
        )
    return body
