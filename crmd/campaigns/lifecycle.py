"""A campaign's lifecycle, as data: its states, the actions that move it, and from which
states each action may start. Pure: ``crmd.campaigns.transitions`` is the one place that
writes a status, as a conditional update built from this table.

::

    draft --send--> queued --plan--> planning --planned--> sending --handed_over--> sent
    draft --schedule--> scheduled --start--> queued            sent --complete--> completed
    queued, planning, sending --pause--> paused
    paused --resume--> sending (planned before) or queued (replan: never planned)
    draft, scheduled, queued, planning, sending, paused --cancel--> cancelled
    sent, completed, sending --retry_failed--> sending
    sending --tested--> testing --decide--> queued   (an A/B test's test share is out;
                                                      the winner goes to the rest)
    testing --pause--> paused --resume--> sending (and on to testing)
    any state but completed, cancelled and error --fail--> error
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec


class Status(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    PLANNING = "planning"
    SENDING = "sending"
    SENT = "sent"
    COMPLETED = "completed"
    TESTING = "testing"
    """An A/B test's test share is handed over: the winner is picked at ``decideAt``."""
    PAUSED = "paused"
    CANCELLED = "cancelled"
    ERROR = "error"


class Action(enum.StrEnum):
    SEND = "send"
    SCHEDULE = "schedule"
    START = "start"
    PLAN = "plan"
    PLANNED = "planned"
    PAUSE = "pause"
    RESUME = "resume"
    REPLAN = "replan"
    """Resume a campaign paused before it was planned: it is planned again."""
    CANCEL = "cancel"
    HANDED_OVER = "handed_over"
    COMPLETE = "complete"
    RETRY_FAILED = "retry_failed"
    FAIL = "fail"
    TESTED = "tested"
    """An A/B test's test share is handed over: wait for its results."""
    DECIDE = "decide"
    """The winner is picked: plan the rest of the audience with it."""

    @property
    def verb(self) -> str:
        """How an operator names the action."""
        return {Action.REPLAN: "resume", Action.RETRY_FAILED: "retry failed messages"}.get(
            self, self.value.replace("_", " ")
        )


class Move(msgspec.Struct, frozen=True):
    sources: frozenset[Status]
    target: Status


S = Status
MOVES: dict[Action, Move] = {
    Action.SEND: Move(frozenset({S.DRAFT}), S.QUEUED),
    Action.SCHEDULE: Move(frozenset({S.DRAFT}), S.SCHEDULED),
    Action.START: Move(frozenset({S.SCHEDULED}), S.QUEUED),
    # "planning" again: a planner that died half way is followed by another.
    Action.PLAN: Move(frozenset({S.QUEUED, S.PLANNING}), S.PLANNING),
    Action.PLANNED: Move(frozenset({S.PLANNING}), S.SENDING),
    Action.PAUSE: Move(frozenset({S.QUEUED, S.PLANNING, S.SENDING, S.TESTING}), S.PAUSED),
    Action.RESUME: Move(frozenset({S.PAUSED}), S.SENDING),
    Action.REPLAN: Move(frozenset({S.PAUSED}), S.QUEUED),
    Action.CANCEL: Move(
        frozenset({S.DRAFT, S.SCHEDULED, S.QUEUED, S.PLANNING, S.SENDING, S.TESTING, S.PAUSED}),
        S.CANCELLED,
    ),
    Action.HANDED_OVER: Move(frozenset({S.SENDING}), S.SENT),
    Action.COMPLETE: Move(frozenset({S.SENT}), S.COMPLETED),
    Action.RETRY_FAILED: Move(frozenset({S.SENT, S.COMPLETED, S.SENDING}), S.SENDING),
    Action.TESTED: Move(frozenset({S.SENDING}), S.TESTING),
    Action.DECIDE: Move(frozenset({S.TESTING}), S.QUEUED),
    Action.FAIL: Move(frozenset(set(S) - {S.COMPLETED, S.CANCELLED, S.ERROR}), S.ERROR),
}

OPERATOR_ACTIONS = (Action.SEND, Action.PAUSE, Action.RESUME, Action.CANCEL, Action.RETRY_FAILED)
"""What a person can ask for (the console shows a button for each one allowed)."""

SENDING_STATES = frozenset({S.PLANNING, S.SENDING, S.SENT})
"""A chunk of messages may be handed to the vendor in these (with several processes, a
chunk can arrive while another process is still planning the rest)."""


def allows(action: Action, status: str) -> bool:
    return status in MOVES[action].sources


def refusal(action: Action, status: str) -> str:
    """Why ``action`` cannot be taken now: "cannot pause: the campaign is completed"."""
    return f"cannot {action.verb}: the campaign is {status}"


def initial_status(draft: bool, scheduled_at: datetime | None, now: datetime) -> Status:
    """A new campaign is a draft, waits for its time, or is queued for planning now."""
    if draft:
        return S.DRAFT
    if scheduled_at is not None and scheduled_at > now:
        return S.SCHEDULED
    return S.QUEUED


def resume_action(planned: bool) -> Action:
    """A paused campaign goes on sending, or is planned again if it never was."""
    return Action.RESUME if planned else Action.REPLAN


def send_action(scheduled_at: datetime | None, now: datetime) -> Action:
    """A draft goes out now, or at its scheduledAt when that is still to come."""
    return Action.SCHEDULE if scheduled_at is not None and scheduled_at > now else Action.SEND


def operator_actions(status: str, planned: bool, *, failed: int) -> list[str]:
    """The operator actions allowed from ``status``, by their public names; retrying
    the failed messages only when some failed."""
    allowed = []
    for action in OPERATOR_ACTIONS:
        real = resume_action(planned) if action is Action.RESUME else action
        if action is Action.RETRY_FAILED and failed <= 0:
            continue
        if allows(real, status):
            allowed.append(action.value)
    return allowed
