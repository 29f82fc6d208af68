"""Time in flows: how long a wait lasts, when a time of day next comes in a customer's
time zone, when quiet hours end, all sped up by ``[flows] time_scale``.

A wait is a real duration divided by the scale: with ``time_scale = 3600`` an hour of
waiting passes in a second. A time of day ("09:00", the end of quiet hours) is looked
for in the customer's zone in scaled time too: the wait until it is its real distance
divided by the scale, so a test sees the same order of events a day would show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def clock_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def zone_of(customer: dict[str, Any], default: str) -> ZoneInfo:
    """The customer's time zone (``timezone``, or ``attrs.timezone``), else ``default``;
    a name that is not a zone counts as unknown."""
    for name in (customer.get("timezone"), (customer.get("attrs") or {}).get("timezone"), default):
        if isinstance(name, str) and name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def until_next(now: datetime, at: time, zone: ZoneInfo) -> timedelta:
    """The real time from ``now`` until the clock next shows ``at`` in ``zone``
    (a whole day when it shows it now)."""
    local = now.astimezone(zone)
    target = datetime.combine(local.date(), at, tzinfo=zone)
    if target <= local:
        target = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
    # In UTC: two times of one zone subtract as wall-clock times, an hour out across a
    # change of daylight saving.
    return target.astimezone(UTC) - now.astimezone(UTC)


@dataclass(frozen=True)
class Quiet:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> Quiet | None:
        """``"21:00-08:00"``; "" is none."""
        if not text:
            return None
        start, _, end = text.partition("-")
        return cls(clock_time(start.strip()), clock_time(end.strip()))

    def left(self, now: datetime, zone: ZoneInfo) -> timedelta:
        """How long quiet hours last from ``now`` (nothing when ``now`` is outside)."""
        local = now.astimezone(zone).time().replace(tzinfo=None)
        if self.start == self.end:
            return timedelta(0)
        inside = (
            self.start <= local < self.end
            if self.start < self.end
            else (local >= self.start or local < self.end)
        )
        return until_next(now, self.end, zone) if inside else timedelta(0)


def scaled(real: timedelta, scale: float) -> timedelta:
    return timedelta(seconds=real.total_seconds() / scale)
