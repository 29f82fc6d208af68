"""Customers on the wire: a customer's page of everything, and a change to one.

Shared by the routes and the typed client: keep it to msgspec and the other schema
modules."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from crmd.http.describe import Moment
from crmd.http.schema import Body

Text = Annotated[str, msgspec.Meta(max_length=1000)]
AttrValue = Annotated[str, msgspec.Meta(max_length=64 * 1024)] | float | bool | None

Attrs = Annotated[
    dict[Annotated[str, msgspec.Meta(max_length=200)], AttrValue], msgspec.Meta(max_length=100)
]


class OrderList(msgspec.Struct):
    items: list[dict[str, Any]]
    """The latest orders first (by ``orderDate``), at most 100."""
    total: int
    """How many orders the customer has."""


class EventView(msgspec.Struct):
    id: str
    name: str
    properties: dict[str, Any]
    timestamp: Moment | None


class MessageView(msgspec.Struct):
    id: str
    campaignId: str
    status: str
    message: str
    """The text as sent, cut to 200 characters."""
    createdAt: Moment | None
    handedAt: Moment | None
    """When it was handed to the vendor (null: not yet)."""


class FlowView(msgspec.Struct):
    flowId: str
    version: int
    status: str
    enteredAt: Moment | None
    updatedAt: Moment | None


class CustomerProfile(msgspec.Struct):
    customer: dict[str, Any]
    """The record as stored, ``id`` being crmd's id (as in ``GET /api/v1/customers``)."""
    orders: OrderList
    events: list[EventView]
    """The latest first, at most 100."""
    messages: list[MessageView]
    """The latest first, at most 100."""
    flows: list[FlowView]
    """The flows the customer is or was in, the latest change first, at most 100."""


class CustomerChange(Body):
    """The fields to change; the others stay. ``attrs`` names the attributes to set
    (null removes one); the customer's id and external id never change."""

    name: Annotated[Text, msgspec.Meta(examples=["Ada Lovelace"])] | UnsetType = UNSET
    email: Annotated[Text, msgspec.Meta(examples=["ada@example.com"])] | UnsetType = UNSET
    phone: Annotated[Text, msgspec.Meta(examples=["+44 20 7946 0000"])] | UnsetType = UNSET
    location: Annotated[Text, msgspec.Meta(examples=["London"])] | UnsetType = UNSET
    attrs: Attrs | UnsetType = UNSET


EXPORT_FORMAT = "crmd.customer-export/1"
"""The export's ``format``: a later crmd that changes the shape says so here."""


class ExportedMessage(msgspec.Struct):
    id: str
    campaignId: str
    campaign: str
    """The campaign's name (a flow's send step or a posted message: its own name)."""
    vendor: str
    recipient: str
    message: str
    """The text as sent, whole."""
    status: str
    """PENDING, SENT, DELIVERED, OPENED, CLICKED, FAILED, BOUNCED, COMPLAINED,
    SUPPRESSED, HELD_OUT, CANCELLED..."""
    reason: str | None
    """Why it failed or was not sent (a vendor's words, or the suppression list's)."""
    createdAt: Moment | None
    handedAt: Moment | None
    """When it was handed to the vendor (null: not yet, or never)."""
    updatedAt: Moment | None
    times: dict[str, Moment]
    """When each status was first reported (the receipts)."""
    opens: int
    """Opens by people (machines' opens left out)."""
    clicks: dict[str, int]
    """Clicks by the index of the tracked link."""


class ExportedFlow(msgspec.Struct):
    flowId: str
    flow: str
    """The flow's name."""
    version: int
    status: str
    reason: str
    enteredAt: Moment | None
    updatedAt: Moment | None
    trigger: dict[str, Any]
    """The event or order that entered the customer."""


class ExportedSuppression(msgspec.Struct):
    email: str
    source: str
    """How it came on the list: unsubscribe, bounce, complaint, failure, operator,
    import."""
    reason: str
    campaignId: str | None
    createdAt: Moment


class CustomerExport(msgspec.Struct):
    """Everything crmd holds about one customer (GDPR articles 15 and 20)."""

    format: str
    """``crmd.customer-export/1``."""
    exportedAt: Moment
    customer: dict[str, Any]
    """The record as stored, ``id`` being crmd's id, with its custom ``attrs``."""
    orders: list[dict[str, Any]]
    """Every order, by its external id or its email, the latest first."""
    events: list[EventView]
    """Every event, the latest first."""
    messages: list[ExportedMessage]
    """Every message sent or planned to them, the latest first, with what it did."""
    flows: list[ExportedFlow]
    suppressions: list[ExportedSuppression]
    """The suppression list's entry naming their address (none, or one)."""
