"""``[flows]``: how fast a flow's clock runs, its limits, and the defaults a flow's
definition may override (``flow_checks`` for what one key alone cannot say)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from msgspec import Meta, Struct

QUIET_HOURS = r"^(([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9])?\Z"


class FlowsConfig(Struct, forbid_unknown_fields=True, kw_only=True):
    """Triggered flows (``crmd.flows``): their waits, limits and sending manners."""

    time_scale: Annotated[float, Meta(gt=0, le=1_000_000)] = 1.0
    """How many times faster than the wall clock every wait of every flow passes: 1 in
    production; tests and demos set, say, 3600, so that an hour of waiting is a
    second."""
    max_wait_days: Annotated[int, Meta(ge=1, le=3650)] = 365
    """The longest wait a flow's step may ask for; a longer one is refused (422)."""
    max_messages_per_customer_per_day: Annotated[int, Meta(ge=0, le=1000)] = 0
    """The most marketing messages (flows', campaigns' and posted ones together) one
    customer is sent in a day (UTC); a message over the cap is not sent, its log
    SUPPRESSED with the cap as its reason. 0: no cap."""
    quiet_hours: Annotated[str, Meta(pattern=QUIET_HOURS)] = ""
    """``"21:00-08:00"``: no flow message is sent from 21:00 to 08:00 in the customer's
    time zone (a send that falls in them waits for the end); a flow may set its own.
    Empty: none."""
    timezone: str = "UTC"
    """The time zone of a customer who has none (their ``timezone`` attribute), for
    waits until a time of day and quiet hours: an IANA name (``Europe/Paris``)."""
    timer_batch: Annotated[int, Meta(ge=1, le=100_000)] = 500
    """How many due waits the clock fires at a time."""
    segment_check_minutes: Annotated[int, Meta(ge=1, le=10_080)] = 15
    """How often the clock looks for customers who entered a flow's trigger segment
    (besides when a customer changes)."""


def flow_checks(flows: FlowsConfig) -> list[tuple[tuple[str, ...], str]]:
    """The time zone is one the system knows; quiet hours are not empty."""
    problems: list[tuple[tuple[str, ...], str]] = []
    try:
        ZoneInfo(flows.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            (
                ("flows", "timezone"),
                "is not a time zone this system knows: write an IANA name such as "
                "'UTC' or 'Europe/Paris'",
            )
        )
    start, _, end = flows.quiet_hours.partition("-")
    if start and start == end:
        problems.append((("flows", "quiet_hours"), "starts and ends at the same time"))
    return problems
