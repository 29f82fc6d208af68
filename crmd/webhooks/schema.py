"""The webhooks API's wire Structs: what it decodes and what it answers."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from crmd.http.describe import Moment
from crmd.http.pages import Limit
from crmd.http.schema import Body
from crmd.webhooks.kinds import SUBSCRIBABLE
from crmd.webhooks.urls import MAX_URL

SubscribableKind = Literal[
    "message.outcome",
    "customer.unsubscribed",
    "import.done",
    "flow.entered",
    "flow.exited",
    "flow.converted",
]
assert set(SubscribableKind.__args__) == set(SUBSCRIBABLE)  # type: ignore[attr-defined]
Url = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=MAX_URL, examples=["http://localhost:8000/hooks/crmd"]),
]
Events = Annotated[list[SubscribableKind], msgspec.Meta(min_length=1, max_length=len(SUBSCRIBABLE))]
Description = Annotated[str, msgspec.Meta(max_length=200)]
DeliveryStatus = Literal["pending", "delivered", "failed", "cancelled"]


class CreateWebhook(Body):
    url: Url
    """Where to post: http or https, no user name or password in it."""
    events: Events
    """The kinds of event to post (at least one)."""
    description: Description = ""


class UpdateWebhook(Body):
    url: Url | None = None
    events: Events | None = None
    enabled: bool | None = None
    """False: nothing is posted, and deliveries waiting are cancelled."""
    description: Description | None = None


class Webhook(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    createdAt: Moment
    updatedAt: Moment


class CreatedWebhook(Webhook):
    secret: str
    """``whsec_`` and base64: the key that signs every delivery (Standard Webhooks).
    Shown this once only; keep it."""


class WebhookList(msgspec.Struct):
    items: list[Webhook]
    total: int


class Delivery(msgspec.Struct):
    id: str
    """Also the ``webhook-id`` header of every attempt."""
    type: str
    status: DeliveryStatus
    attempts: int
    createdAt: Moment
    lastAt: Moment | None
    nextAt: Moment | None
    """When the next attempt is due (pending deliveries only)."""
    responseStatus: int | None
    """The endpoint's HTTP status at the last attempt; null when it did not answer."""
    responseBody: str
    """The first KB of the endpoint's answer at the last attempt."""
    latencyMs: int | None
    error: str
    """Why the last attempt got no answer (a timeout, a refused connection)."""


class DeliveryList(msgspec.Struct):
    items: list[Delivery]
    cursor: str | None
    """Pass it back as ``cursor`` for the next (older) page; null on the last."""


class DeliveryQuery(msgspec.Struct):
    limit: Limit = 50
    cursor: Annotated[str, msgspec.Meta(max_length=80)] | None = None


class TestResult(msgspec.Struct):
    delivered: bool
    """Whether the endpoint answered 2xx."""
    delivery: Delivery


class WebhookPath(msgspec.Struct):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
