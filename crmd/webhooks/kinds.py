"""The events crmd posts to webhooks: one home for their names."""

from __future__ import annotations

from enum import StrEnum

from crmd.messages import MessageStatus


class Kind(StrEnum):
    MESSAGE_OUTCOME = "message.outcome"
    """A message's receipt said what became of it: delivered, opened, clicked,
    bounced, complained or failed."""
    CUSTOMER_UNSUBSCRIBED = "customer.unsubscribed"
    """A recipient followed a message's unsubscribe link (or one-click unsubscribe)."""
    IMPORT_DONE = "import.done"
    """Every valid row of an upload is stored."""
    FLOW_ENTERED = "flow.entered"
    FLOW_EXITED = "flow.exited"
    FLOW_CONVERTED = "flow.converted"
    WEBHOOK_TEST = "webhook.test"
    """Sent only by the test button (``POST /api/v1/webhooks/{id}/test``)."""


KINDS: tuple[str, ...] = tuple(k.value for k in Kind)
SUBSCRIBABLE: tuple[str, ...] = tuple(k for k in KINDS if k != Kind.WEBHOOK_TEST)
"""What a subscription may list: a test goes to the one webhook it is asked of."""

S = MessageStatus
OUTCOMES: dict[str, str] = {
    S.DELIVERED: "delivered",
    S.OPENED: "opened",
    S.CLICKED: "clicked",
    S.BOUNCED: "bounced",
    S.COMPLAINED: "complained",
    S.FAILED: "failed",
}
"""The receipt statuses that are a message outcome, and the outcome's name."""
