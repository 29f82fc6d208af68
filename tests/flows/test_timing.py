"""Paths through a flow's tree of steps, and time in flows: the next time of
day in a customer's zone, quiet hours across midnight, the speed-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from crmd.flows import paths
from crmd.flows.checks import walk
from crmd.flows.model import Step
from crmd.flows.rules import holds
from crmd.flows.timing import (
    Quiet,
    clock_time,
    scaled,
    until_next,
    zone_of,
)

STEPS = msgspec.json.decode(
    b"""[{"wait": "1h"},
         {"branch": {"rule": "spend > 1",
                     "yes": [{"exit": {}}],
                     "no": [{"wait": "1h"},
                            {"branch": {"rule": "spend > 2", "yes": [],
                                        "no": [{"send": {"message": "m"}}]}}]}},
         {"send": {"message": "last"}}]""",
    type=list[Step],
)


def test_each_step_leads_to_the_next_in_its_list_then_out_of_its_branch() -> None:
    walked = {path: paths.after(STEPS, path) for path, _ in walk(STEPS)}
    assert walked == {
        "0": "1",
        "1": "2",
        "1.yes.0": "2",
        "1.no.0": "1.no.1",
        "1.no.1": "2",
        "1.no.1.no.0": "2",
        "2": "",
    }
    assert paths.arm_start(STEPS, "1", "no") == "1.no.0"
    assert paths.arm_start(STEPS, "1.no.1", "yes") == "2", "an empty arm goes on after its branch"
    assert paths.step_at(STEPS, "1.no.1.no.0").send.message == "m"
    assert paths.step_at(STEPS, "7") is None and paths.step_at(STEPS, "0.yes.0") is None


def test_the_next_time_of_day_is_in_the_customers_zone() -> None:
    kolkata = zone_of({"attrs": {"timezone": "Asia/Kolkata"}}, "UTC")
    now = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)  # 23:30 in Kolkata
    assert until_next(now, clock_time("09:00"), kolkata) == timedelta(hours=9, minutes=30)
    assert until_next(now, clock_time("23:30"), kolkata) == timedelta(days=1), "now is not next"
    assert zone_of({"timezone": "Not/AZone"}, "Europe/Paris").key == "Europe/Paris"


def test_quiet_hours_across_midnight_last_until_their_end() -> None:
    quiet = Quiet.parse("21:00-08:00")
    assert quiet is not None
    utc = zone_of({}, "UTC")
    assert quiet.left(datetime(2026, 12, 7, 22, 0, tzinfo=UTC), utc) == timedelta(hours=10)
    assert quiet.left(datetime(2026, 12, 7, 7, 30, tzinfo=UTC), utc) == timedelta(minutes=30)
    assert quiet.left(datetime(2026, 12, 7, 12, 0, tzinfo=UTC), utc) == timedelta(0)
    day = Quiet.parse("12:00-13:00")
    assert day is not None and day.left(
        datetime(2026, 12, 7, 12, 15, tzinfo=UTC), utc
    ) == timedelta(minutes=45)
    assert Quiet.parse("") is None


def test_the_scale_divides_every_wait() -> None:
    assert scaled(timedelta(hours=2), 3600) == timedelta(seconds=2)


def test_flow_rules_read_the_customer_and_the_events_properties() -> None:
    now = datetime.now(UTC)
    rule = "event.amount >= 100 AND spend > 5"
    assert holds(rule, {"spend": 10}, {"amount": 150}, now)
    assert not holds(rule, {"spend": 10}, {"amount": 50}, now)
    assert not holds(rule, {"spend": 1}, {"amount": 150}, now)
    assert holds(None, {}, {}, now)


@pytest.mark.parametrize("day", [29, 25])  # spring forward (March), fall back (October)
def test_a_time_of_day_is_that_time_on_the_wall_across_daylight_saving(day: int) -> None:
    london = zone_of({"timezone": "Europe/London"}, "UTC")
    now = datetime(2026, 3 if day == 29 else 10, day, 0, 30, tzinfo=UTC)
    ends = now + until_next(now, clock_time("09:00"), london)
    assert ends.astimezone(london).strftime("%H:%M") == "09:00"
    quiet = Quiet.parse("21:00-08:00")
    assert quiet is not None
    awake = now + quiet.left(now, london)
    assert awake.astimezone(london).strftime("%H:%M") == "08:00"
