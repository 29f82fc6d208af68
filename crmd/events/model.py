"""An event as it is stored, and as it travels on the events stream."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from crmd.streams.describe import Payload

if TYPE_CHECKING:
    from crmd.store.tenant import TenantStore

COLLECTION = "events"
FIELD = b"events"
"""The stream entry's field that holds an ``EventBatch``."""
ORDER = "order"
"""The name of the event every new order raises."""


def event_record_id(user: str, event_id: str) -> str:
    """The stored ``_id`` of the tenant's event ``event_id``: one per (tenant, id), so a
    second copy of an event is a duplicate key, whoever writes it and when."""
    return hashlib.sha256(f"{user}\x00event\x00{event_id}".encode()).hexdigest()[:24]


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One stored event (``events`` collection): the document's fields, ``id`` its
    ``_id``."""

    id: str
    userId: str
    customerId: str
    """The crmd id (``_id``) of the customer it is about."""
    name: str
    properties: dict[str, Any]
    timestamp: datetime
    """When it happened (UTC), as the caller said, else when it was received."""
    eventId: str
    """The caller's id, else one crmd made; unique per tenant."""
    receivedAt: datetime
    source: str = ""
    """What wrote it (the stream entry, the ingest chunk): a second delivery of the same
    source finds its own events, which it then finishes (``crmd.events.store``)."""

    def document(self) -> dict[str, Any]:
        doc = msgspec.structs.asdict(self)
        doc["_id"] = doc.pop("id")
        return doc

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Event:
        fields = {k: v for k, v in doc.items() if k in cls.__struct_fields__ or k == "_id"}
        fields["id"] = fields.pop("_id")
        return msgspec.convert(fields, cls)


AfterStore = Callable[["TenantStore", list[Event]], Awaitable[None]]
"""Told the events a batch stored, once they are stored (and the customers' counts
moved): a flow's trigger. At least once: events stored by a delivery that crashed
before telling are told again when it is redone."""


async def nothing_after_store(store: TenantStore, events: list[Event]) -> None:
    return None


class EventBatch(msgspec.Struct, array_like=True):
    """One stream entry: the events of one request, validated and with their customers
    found."""

    user: str
    events: list[Event]
    numbers: dict[str, int] = {}
    """Each customer's number (``n``), so that its audience slice moves on."""


encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder(EventBatch).decode


def describe(raw: bytes) -> Payload:
    """A batch in words, for a dead letter (``crmd.streams.describe``)."""
    batch = decode(raw)
    names = sorted({e.name for e in batch.events})
    shown = ", ".join(names[:5]) + ("…" if len(names) > 5 else "")
    return Payload("events", f"{len(batch.events)} events ({shown})", batch.user)
