"""What a flow's definition must be to run, checked without a server: each refusal
names its field as a JSON path (and a rule's or a template's column)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pytest

from crmd.campaigns.vendors import Vendors
from crmd.flows.checks import InvalidFlow, Limits, check, duration_of, trigger_key, walk
from crmd.flows.model import FlowBody
from crmd.segments.fields import CUSTOMERS, CUSTOMERS_AND_EVENT
from crmd.segments.parse import RuleError, parse_rule


class Named:
    def __init__(self, name: str) -> None:
        self.name = name


VENDORS = Vendors([Named("dummy"), Named("smtp")])  # type: ignore[list-item]
SEND = {"send": {"message": "Hi {name}"}}


def flow(**fields: Any) -> FlowBody:
    body = {"name": "F", "trigger": {"event": "signup"}, "steps": [{"wait": "1d"}, SEND]}
    return msgspec.convert({**body, **fields}, FlowBody)


def refused(body: FlowBody, limits: Limits | None = None) -> dict[str, Any]:
    with pytest.raises(InvalidFlow) as err:
        check(body, VENDORS, limits)
    assert err.value.status == 422
    details: dict[str, Any] = err.value.details
    return {**details, "message": err.value.message}


def nested(depth: int) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [SEND]
    for _ in range(depth):
        steps = [{"branch": {"rule": "spend > 1", "yes": steps}}]
    return steps


BAD = [
    ({"trigger": {}}, "$.trigger", "none is set"),
    ({"trigger": {"event": "a", "segment": "x"}}, "$.trigger", "event, segment are set"),
    ({"trigger": {"where": "spend > 1"}}, "$.trigger", "none is set"),
    ({"steps": [{}]}, "$.steps[0]", "none is set"),
    ({"steps": [{"wait": "1d", "exit": {}}]}, "$.steps[0]", "wait, exit are set"),
    ({"steps": [{"wait": "soon"}]}, "$.steps[0].wait", "is not a duration"),
    ({"steps": [{"wait": "1y"}]}, "$.steps[0].wait", "is not a duration"),
    ({"steps": [{"wait": "0s"}]}, "$.steps[0].wait", "longer than nothing"),
    ({"steps": [{"wait": "365000d"}]}, "$.steps[0].wait", "at most 365 days"),
    ({"steps": [{"wait": "53w"}]}, "$.steps[0].wait", "max_wait_days"),
    ({"steps": [{"exit": {}}, SEND]}, "$.steps[1]", "unreachable"),
    (
        {"steps": [{"branch": {"rule": "spend > 1", "yes": [{"exit": {}}, SEND]}}]},
        "$.steps[0].branch.yes[1]",
        "unreachable",
    ),
    (
        {
            "steps": [
                {"branch": {"rule": "spend > 1", "yes": [{"exit": {}}], "no": [{"exit": {}}]}},
                SEND,
            ]
        },
        "$.steps[1]",
        "unreachable",
    ),
    ({"steps": [{"branch": {"rule": "spend > 1"}}]}, "$.steps[0].branch", "needs steps"),
    (
        {"steps": [{"branch": {"rule": "spend >", "yes": [SEND]}}]},
        "$.steps[0].branch.rule",
        "unexpected end of rule",
    ),
    (
        {"steps": [{"branch": {"rule": "event.plan = 'x'", "yes": [SEND]}}]},
        "$.steps[0].branch.rule",
        "expected '.count' after 'event.plan'",
    ),
    ({"steps": nested(9)}, "$.steps[0]" + ".branch.yes[0]" * 8 + ".branch", "nest at most 8"),
    ({"steps": [{"wait": "1h"}] * 101}, "$.steps", "Expected `array` of length <= 100"),
    (
        {"steps": [{"branch": {"rule": "spend > 1", "yes": [{"wait": "1h"}] * 100}}]},
        "$.steps[0].branch.yes[99]",
        "at most 100 steps",
    ),
    ({"steps": [{"send": {"message": "Hi {nmae}"}}]}, "$.steps[0].send.message", "{nmae}"),
    (
        {"steps": [{"send": {"message": "Hi", "subject": "{unsubscribe_url}"}}]},
        "$.steps[0].send.subject",
        "unknown placeholder",
    ),
    ({"steps": [{"send": {"message": "Hi", "html": "<p>{x"}}]}, "$.steps[0].send.html", "{"),
    ({"steps": [{"send": {"message": "Hi", "vendor": "nope"}}]}, "$.steps[0].send.vendor", "nope"),
    ({"trigger": {"event": "a", "where": "event.plan ="}}, "$.trigger.where", "a value"),
    ({"trigger": {"anniversary": "spend"}}, "$.trigger.anniversary", "not a date field"),
    ({"trigger": {"anniversary": "name"}}, "$.trigger.anniversary", "not a date field"),
    ({"entry": "once", "reentryDays": 30}, "$.reentryDays", "entry: every"),
    ({"goal": {}}, "$.goal", "an event"),
    ({"goal": {"order": False, "where": "spend > 1"}}, "$.goal", "an event"),
    ({"goal": {"event": "bought", "order": True}}, "$.goal", "event and order are set"),
    ({"goal": {"event": "bought", "where": "event.x >"}}, "$.goal.where", "a value"),
    ({"quietHours": {"start": "09:00", "end": "09:00"}}, "$.quietHours", "same time"),
]


@pytest.mark.parametrize(("fields", "path", "words"), BAD)
def test_each_bad_definition_names_its_field(fields: dict[str, Any], path: str, words: str):
    try:
        body = flow(**fields)
    except msgspec.ValidationError as exc:  # the model's own limits (the API's 422 too)
        assert str(exc).endswith(f"`{path}`") and words in str(exc)
        return
    found = refused(body)
    assert found["field"] == path
    assert words in found["message"]


def test_a_rule_error_gives_its_column():
    found = refused(flow(trigger={"event": "a", "where": "spend > 1 and bogus = 2"}))
    assert found["field"] == "$.trigger.where"
    assert found["column"] == 15
    found = refused(flow(steps=[{"send": {"message": "Hello {nope}"}}]))
    assert (found["field"], found["column"]) == ("$.steps[0].send.message", 7)


def test_a_good_flow_passes_and_keeps_its_definition():
    body = flow(
        entry="every",
        reentryDays=30,
        trigger={"order": {"minAmount": 100}, "where": "event.amount > 200 and spend > 5"},
        steps=[
            {"wait": {"until": "09:00"}},
            {
                "branch": {
                    "rule": "attrs.tier = 'gold'",
                    "yes": [{"send": {"message": "Gold {name}", "vendor": "smtp"}}],
                    "no": [{"addTo": {"field": "tags", "value": "silver"}}, {"exit": {}}],
                }
            },
            {"removeFrom": {"field": "tags", "value": "new"}},
        ],
        goal={"event": "review", "where": "event.stars >= 4"},
        quietHours={"start": "21:00", "end": "08:00"},
    )
    definition = check(body, VENDORS)
    assert definition.steps == body.steps and definition.reentryDays == 30
    assert trigger_key(definition.trigger) == "order"
    paths = [path for path, _ in walk(definition.steps)]
    assert paths == ["0", "1", "1.yes.0", "1.no.0", "1.no.1", "2"]


def test_the_step_after_a_branch_with_one_open_arm_is_reachable():
    steps = [{"branch": {"rule": "spend > 1", "yes": [{"exit": {}}]}}, SEND]
    check(flow(steps=steps), VENDORS)


def test_eight_levels_of_branches_and_a_hundred_steps_are_allowed():
    check(flow(steps=nested(8)), VENDORS)
    check(flow(steps=[{"wait": "1h"}] * 99 + [SEND]), VENDORS)


def test_the_longest_wait_is_the_configured_one():
    check(flow(steps=[{"wait": "365d"}]), VENDORS)
    assert refused(flow(steps=[{"wait": "3d"}]), Limits(max_wait_days=2))["field"] == (
        "$.steps[0].wait"
    )


def test_a_send_without_a_vendor_needs_a_default_one():
    check(flow(), VENDORS)
    with pytest.raises(InvalidFlow) as err:
        check(flow(), Vendors([]))
    assert err.value.details == {"field": "$.steps[1].send.vendor"}


@pytest.mark.parametrize(
    ("trigger", "key"),
    [
        ({"event": "signup"}, "event:signup"),
        ({"order": {"first": True}}, "order"),
        ({"segment": "65f0c0ffee00000000000001"}, "segment:65f0c0ffee00000000000001"),
        ({"anniversary": "birthday"}, "anniversary:birthday"),
        ({"anniversary": "lastOrderAt"}, "anniversary:lastOrderAt"),
    ],
)
def test_each_trigger_has_its_key(trigger: dict[str, Any], key: str):
    assert trigger_key(check(flow(trigger=trigger), VENDORS).trigger) == key


def test_event_properties_are_named_only_in_trigger_and_goal_rules():
    """``event.<property>`` is a field of a rule checked against an event; a customer
    rule (a segment's, a branch's) still refuses it, and its other fields stand."""
    assert parse_rule("event.plan = 'pro'", CUSTOMERS_AND_EVENT) is not None
    assert parse_rule("event.total > 3 and spend > 1", CUSTOMERS_AND_EVENT) is not None
    with pytest.raises(RuleError, match=r"expected '\.count' after 'event\.plan'"):
        parse_rule("event.plan = 'pro'", CUSTOMERS)
    with pytest.raises(RuleError, match="unknown field"):
        parse_rule("event.a.b = 1", CUSTOMERS_AND_EVENT)
    with pytest.raises(RuleError, match="unknown field 'spnd'"):
        parse_rule("spnd > 1", CUSTOMERS_AND_EVENT)
    refused_where = refused(flow(trigger={"segment": "x", "where": "event.plan = 'pro'"}))
    assert refused_where["field"] == "$.trigger.where"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("3d", 259_200), ("1w", 604_800), ("0s", 0)],
)
def test_durations(text: str, seconds: int):
    assert duration_of(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "2", "h", "2 hours", "1.5h", "-1d", "2H", "1y", "\u0661d"])
def test_what_is_not_a_duration(text: str):
    with pytest.raises(ValueError, match="not a duration"):
        duration_of(text)
