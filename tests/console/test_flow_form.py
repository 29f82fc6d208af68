"""The flow editor's form, without a browser: read into the API's body, written back from
a flow, its own moves (add, remove, move a step), and the API's paths read back into
the form's fields."""

from __future__ import annotations

import msgspec
import pytest

from crmd.console.flow_form import body_of, moved, rows_of, values_of
from crmd.console.flow_mistakes import form_field, mistake
from crmd.console.flow_words import step_lines, trigger_words
from crmd.errors import BadRequest
from crmd.flows.checks import InvalidFlow
from crmd.flows.model import Definition, FlowBody

FLOW = {
    "name": "Thanks",
    "status": "draft",
    "entry": "every",
    "reentryDays": 30,
    "trigger": {"event": "signup", "where": 'event.plan = "pro"'},
    "steps": [
        {"wait": "2h"},
        {
            "branch": {
                "rule": "spend > 5000",
                "yes": [{"send": {"message": "Hi {name}", "subject": "Big", "vendor": "dummy"}}],
                "no": [{"wait": {"until": "09:00"}}, {"addTo": {"field": "tags", "value": "x"}}],
            }
        },
        {"removeFrom": {"field": "tags", "value": "x"}},
        {"exit": {}},
    ],
    "goal": {"event": "purchase", "where": "spend > 1"},
    "quietHours": {"start": "21:00", "end": "08:00"},
}


def as_body(flow: dict[str, object]) -> FlowBody:
    return msgspec.convert(flow, FlowBody)


def test_a_flow_written_into_the_form_reads_back_as_the_same_body():
    body = as_body(FLOW)
    definition = msgspec.convert(
        {k: v for k, v in FLOW.items() if k not in ("name", "status")}, Definition
    )
    values = values_of("Thanks", definition)
    assert values["step-1-yes-0-message"] == "Hi {name}"
    assert values["step-1-no-0-until"] == "09:00"
    assert values["trigger"] == "event" and values["triggerEvent"] == "signup"
    assert body_of(values) == body


def test_an_order_trigger_and_an_order_goal_read_from_the_form():
    values = {
        "name": "Big spenders",
        "trigger": "order",
        "orderFirst": "on",
        "orderMin": "500",
        "goal": "order",
        "step-0-kind": "send",
        "step-0-message": "Thanks",
    }
    body = body_of(values, "active")
    assert body.status == "active"
    assert body.trigger.order is not None
    assert (body.trigger.order.first, body.trigger.order.minAmount) == (True, 500.0)
    assert body.goal is not None and body.goal.order and body.goal.event is None
    assert body.steps[0].send is not None and body.steps[0].send.vendor is None


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"trigger": "event", "triggerEvent": "a"}, "$.steps"),
        ({"trigger": "", "step-0-kind": "exit"}, "$.trigger"),
        ({"trigger": "segment", "step-0-kind": "exit"}, "$.trigger.segment"),
        (
            {"trigger": "order", "orderMin": "lots", "step-0-kind": "exit"},
            "$.trigger.order.minAmount",
        ),
        ({"trigger": "event", "triggerEvent": "a", "step-0-kind": "wait"}, "$.steps[0].wait"),
        (
            {
                "trigger": "event",
                "step-0-kind": "wait",
                "step-0-wait": "1h",
                "step-0-until": "09:00",
            },
            "$.steps[0].wait",
        ),
        ({"trigger": "event", "triggerEvent": "a", "step-0-kind": "fly"}, "$.steps[0]"),
        ({"trigger": "event", "triggerEvent": "", "step-0-kind": "exit"}, "$.trigger.event"),
    ],
)
def test_what_the_form_cannot_say_is_refused_naming_the_api_path(values, path):
    with pytest.raises(InvalidFlow) as refused:
        body_of({"name": "n", **values})
    assert refused.value.details["field"] == path


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("$.steps[2].branch.yes[0].wait", "step-2-yes-0-wait"),
        ("$.steps[0].wait.until", "step-0-until"),
        ("$.steps[1].branch.no[3].branch.yes[0].send.vendor", "step-1-no-3-yes-0-vendor"),
        ("$.steps[1].branch.rule", "step-1-rule"),
        ("$.steps[1].branch", "step-1-kind"),
        ("$.steps[4]", "step-4-kind"),
        ("$.steps[0].addTo.field", "step-0-list"),
        ("$.trigger.where", "triggerWhere"),
        ("$.trigger.order.minAmount", "orderMin"),
        ("$.goal.where", "goalWhere"),
        ("$.quietHours", "quietStart"),
        ("$.reentryDays", "reentryDays"),
        ("$.steps", "steps"),
        ("$.somethingElse", "form"),
    ],
)
def test_an_api_path_is_read_back_as_the_form_field_it_names(path, field):
    assert form_field(path) == field


def test_a_mistake_says_the_step_and_the_field_in_words():
    said = mistake("'1000y' is not a duration", "$.steps[2].branch.yes[0].wait")
    assert said["field"] == "step-2-yes-0-wait"
    assert said["said"] == "Step 3, if yes: step 1, wait for: '1000y' is not a duration"
    empty = mistake("Expected `str` of length >= 1 - x", "$.steps[0].send.message")
    assert empty["message"] == "fill this in"
    pattern = mistake("Expected `str` matching regex '^x$'", "$.quietHours.end")
    assert pattern["message"] == "write a time of day as HH:MM, 00:00 to 23:59"
    assert mistake("bad rule", "$.trigger.where", 4)["said"].endswith("(at column 4)")


def test_the_editors_moves_add_remove_and_reorder_steps_in_their_own_list():
    values = {
        "name": "n",
        "step-0-kind": "wait",
        "step-0-wait": "1h",
        "step-1-kind": "branch",
        "step-1-rule": "spend > 1",
        "step-1-yes-0-kind": "exit",
    }
    added = moved(values, "add:1-yes-")
    assert added["step-1-yes-1-kind"] == "wait" and added["step-1-yes-0-kind"] == "exit"
    added = moved(added, "add:1-no-")
    assert added["step-1-no-0-kind"] == "wait"
    swapped = moved(added, "down:0")
    assert swapped["step-0-kind"] == "branch" and swapped["step-0-yes-1-kind"] == "wait"
    assert swapped["step-1-wait"] == "1h" and swapped["name"] == "n"
    back = moved(swapped, "up:1")
    assert back == added
    removed = moved(back, "remove:1-yes-0")
    assert removed["step-1-yes-0-kind"] == "wait" and "step-1-yes-1-kind" not in removed
    assert len(rows_of(moved(removed, "remove:0"))) == 1
    for bad in ("add:x", "remove:9", "explode:0", "remove:0-maybe-0"):
        with pytest.raises(BadRequest):
            moved(values, bad)


def test_a_flow_said_in_words_each_step_a_line_with_its_path():
    definition = as_body(FLOW)
    lines = step_lines(
        Definition(
            entry=definition.entry,
            reentryDays=definition.reentryDays,
            trigger=definition.trigger,
            steps=definition.steps,
        )
    )
    assert [(line.path, line.words) for line in lines] == [
        ("0", "wait 2h"),
        ("1", "if spend > 5000"),
        ("1.yes.0", "send \u201cHi {name}\u201d (subject \u201cBig\u201d) through dummy"),
        ("1.no.0", "wait until 09:00 in the customer's time zone"),
        ("1.no.1", "add \u201cx\u201d to list attrs.tags"),
        ("2", "remove \u201cx\u201d from list attrs.tags"),
        ("3", "exit the flow"),
    ]
    assert [line.depth for line in lines] == [0, 0, 1, 1, 1, 0, 0]
    assert [line.arm for line in lines] == ["", "", "yes", "no", "", "", ""]
    said = trigger_words(definition.trigger, {})
    assert said == 'when event signup happens, where event.plan = "pro"'
