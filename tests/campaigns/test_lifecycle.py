"""The campaign lifecycle as data: every action from every state, the refusals' words,
and the rule that nothing but ``crmd.campaigns.transitions`` writes a status."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmd.campaigns.lifecycle import (
    MOVES,
    Action,
    Status,
    allows,
    initial_status,
    operator_actions,
    refusal,
    resume_action,
    send_action,
)

S = Status
ALLOWED = {
    Action.SEND: {S.DRAFT},
    Action.SCHEDULE: {S.DRAFT},
    Action.START: {S.SCHEDULED},
    Action.PLAN: {S.QUEUED, S.PLANNING},
    Action.PLANNED: {S.PLANNING},
    Action.PAUSE: {S.QUEUED, S.PLANNING, S.SENDING, S.TESTING},
    Action.RESUME: {S.PAUSED},
    Action.REPLAN: {S.PAUSED},
    Action.CANCEL: {S.DRAFT, S.SCHEDULED, S.QUEUED, S.PLANNING, S.SENDING, S.TESTING, S.PAUSED},
    Action.HANDED_OVER: {S.SENDING},
    Action.COMPLETE: {S.SENT},
    Action.RETRY_FAILED: {S.SENT, S.COMPLETED, S.SENDING},
    Action.FAIL: set(S) - {S.COMPLETED, S.CANCELLED, S.ERROR},
    Action.TESTED: {S.SENDING},
    Action.DECIDE: {S.TESTING},
}
TARGET = {
    Action.SEND: S.QUEUED,
    Action.SCHEDULE: S.SCHEDULED,
    Action.START: S.QUEUED,
    Action.PLAN: S.PLANNING,
    Action.PLANNED: S.SENDING,
    Action.PAUSE: S.PAUSED,
    Action.RESUME: S.SENDING,
    Action.REPLAN: S.QUEUED,
    Action.CANCEL: S.CANCELLED,
    Action.HANDED_OVER: S.SENT,
    Action.COMPLETE: S.COMPLETED,
    Action.RETRY_FAILED: S.SENDING,
    Action.FAIL: S.ERROR,
    Action.TESTED: S.TESTING,
    Action.DECIDE: S.QUEUED,
}


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("status", list(Status))
def test_every_action_from_every_state(action: Action, status: Status):
    assert allows(action, status) is (status in ALLOWED[action])
    assert MOVES[action].target is TARGET[action]


@pytest.mark.parametrize(
    ("action", "status", "words"),
    [
        (Action.PAUSE, "completed", "cannot pause: the campaign is completed"),
        (Action.RESUME, "sent", "cannot resume: the campaign is sent"),
        (Action.REPLAN, "cancelled", "cannot resume: the campaign is cancelled"),
        (Action.RETRY_FAILED, "draft", "cannot retry failed messages: the campaign is draft"),
        (Action.SEND, "queued", "cannot send: the campaign is queued"),
    ],
)
def test_a_refusal_names_the_action_and_the_state(action: Action, status: str, words: str):
    assert refusal(action, status) == words


def test_a_new_campaign_is_a_draft_waits_or_is_queued():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert initial_status(True, None, now) is S.DRAFT
    assert initial_status(True, now + timedelta(hours=1), now) is S.DRAFT
    assert initial_status(False, now + timedelta(hours=1), now) is S.SCHEDULED
    assert initial_status(False, now - timedelta(hours=1), now) is S.QUEUED
    assert initial_status(False, None, now) is S.QUEUED
    assert send_action(now + timedelta(seconds=1), now) is Action.SCHEDULE
    assert send_action(now, now) is Action.SEND
    assert resume_action(planned=True) is Action.RESUME
    assert resume_action(planned=False) is Action.REPLAN


@pytest.mark.parametrize(
    ("status", "planned", "buttons"),
    [
        ("draft", False, ["send", "cancel"]),
        ("queued", False, ["pause", "cancel"]),
        ("sending", True, ["pause", "cancel", "retry_failed"]),
        ("paused", True, ["resume", "cancel"]),
        ("paused", False, ["resume", "cancel"]),
        ("sent", True, ["retry_failed"]),
        ("completed", True, ["retry_failed"]),
        ("cancelled", True, []),
        ("error", False, []),
    ],
)
def test_the_operator_sees_only_the_actions_allowed(status: str, planned: bool, buttons: list[str]):
    assert operator_actions(status, planned, failed=1) == buttons
    nothing_failed = [b for b in buttons if b != "retry_failed"]
    assert operator_actions(status, planned, failed=0) == nothing_failed


@given(st.lists(st.sampled_from(list(Action)), max_size=30))
def test_any_sequence_of_actions_stays_in_known_states(actions: list[Action]):
    status = S.DRAFT
    for action in actions:
        if allows(action, status):
            status = MOVES[action].target
        assert status in set(S)
    # A cancelled or completed campaign never moves again, except retry from completed.
    assert not any(allows(a, S.CANCELLED) for a in Action)
    assert [a for a in Action if allows(a, S.COMPLETED)] == [Action.RETRY_FAILED]


def _writes_a_status(node: ast.Call) -> bool:
    """A call like ``x["campaigns"].update_one(..., {"$set": {"status": ...}})``."""
    if not isinstance(node.func, ast.Attribute) or node.func.attr not in (
        "update_one",
        "update_many",
        "find_one_and_update",
        "bulk_update",
        "replace_one",
    ):
        return False
    receiver = ast.unparse(node.func.value)
    if "campaign" not in receiver:
        return False
    return any(
        isinstance(key, ast.Constant) and key.value == "status"
        for argument in node.args
        for child in ast.walk(argument)
        if isinstance(child, ast.Dict)
        for key in child.keys
    )


def test_nothing_but_the_transitions_module_writes_a_campaign_status():
    root = Path(__file__).resolve().parents[2] / "crmd"
    writers = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _writes_a_status(node):
                writers.append(str(path.relative_to(root)))
    # The scan finds the one writer there is, and no other.
    assert writers == ["campaigns/transitions.py"], writers
