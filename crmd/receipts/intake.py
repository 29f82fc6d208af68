"""Receiving a vendor's (or a receipt source's) callback: its plugin verifies and reads it,
in one worker thread under one time limit, crmd checks what it read, and the events are queued for
the receipts actor. A vendor that raises or hangs refuses its own callback (4xx, named
in the log); it never stalls a request or leaks a 500."""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
from collections.abc import Mapping
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from crmd.errors import BadRequest, Unauthorized, Unprocessable
from crmd.http.bodies import NESTED_TOO_DEEP
from crmd.messages import REPORTED
from crmd.plugins.vendor import Nonce, ReceiptEvent
from crmd.receipts import batch
from crmd.receipts.sources import ReceiptSources
from crmd.store.limits import DATE_RANGE, to_utc
from crmd.streams import StreamNames, text_of
from crmd.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)
MAX_EVENTS = 10_000
MAX_EVENT_ID = 200
PLUGIN_BUDGET = 5.0
"""Seconds a vendor's verify_receipt and parse_receipts may take together."""
STATUSES = ", ".join(REPORTED)
MAX_NONCE_SECONDS = 86_400
"""The longest a source's nonce is remembered, whatever it asks."""


class ReceiptIntake:
    def __init__(
        self,
        sources: ReceiptSources,
        redis: Redis,
        streams: StreamNames,
        metrics: Metrics,
        budget: float = PLUGIN_BUDGET,
    ) -> None:
        self.sources = sources
        self.redis = redis
        self.stream = streams.receipts
        self.metrics = metrics
        self.budget = budget

    async def receive(
        self, vendor_name: str | None, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, int]:
        """Queue a callback's receipts; returns (accepted, duplicates)."""
        sender = self.sources.reporter(vendor_name)
        name = sender.name
        # One hop to a worker thread for both calls, under one budget; the body is parsed
        # only once its signature held, and each call keeps its own error.
        calls = _Calls(sender.plugin, headers, body)
        try:
            async with asyncio.timeout(self.budget):
                await asyncio.to_thread(calls)
        except TimeoutError:
            step = calls.late(self.budget)
            log.error("receipt.plugin_timeout", vendor=name, call=step, seconds=self.budget)
        try:
            if calls.refused is not None:
                raise calls.refused
            if isinstance(calls.verified, Nonce):
                await self._first_use(name, calls.verified, body)
        except Exception as exc:  # a vendor bug must fail closed, never open
            self.metrics.receipts.labels(name, "rejected").inc()
            log.warning("receipt.rejected", vendor=name, reason=str(exc)[:200])
            raise Unauthorized(f"receipt not accepted by {name}: {exc}"[:300]) from None
        try:
            if calls.unread is not None:
                raise calls.unread
            events = calls.parsed
        except RecursionError:
            raise BadRequest(NESTED_TOO_DEEP, code="bad_json") from None
        except ValueError as exc:
            raise Unprocessable(f"{name}: {exc}"[:500], code="invalid_receipt") from None
        except Exception as exc:  # a vendor's bug: the sender hears it, the log names it
            raise unreadable(name, exc) from None
        try:
            if not all(isinstance(event, ReceiptEvent) for event in events):
                raise TypeError("parse_receipts gave something other than ReceiptEvents")
            if sender.reports_for:
                events = self._naming_a_message(name, events)
            unique = checked(events)
        except (AttributeError, TypeError) as exc:  # a ReceiptEvent of the wrong types
            raise unreadable(name, exc) from None
        if unique:
            entry = batch.ReceiptBatch(name, unique, list(sender.reports_for))
            await self.redis.xadd(self.stream, {batch.FIELD: batch.encode(entry)})
        self.metrics.receipts.labels(name, "accepted").inc(len(unique))
        return len(unique), len(events) - len(unique)

    def _naming_a_message(self, name: str, events: list[ReceiptEvent]) -> list[ReceiptEvent]:
        """A source's events that name a message crmd sent: the others (mail sent some
        other way through the same provider) are dropped, counted, never an error the
        provider would retry for days."""
        named = [e for e in events if e.message_id or e.vendor_message_id]
        if len(named) < len(events):
            dropped = len(events) - len(named)
            self.metrics.receipts.labels(name, "unnamed").inc(dropped)
            log.info("receipt.unnamed_dropped", vendor=name, count=dropped)
        return named

    async def _first_use(self, name: str, nonce: Nonce, body: bytes) -> None:
        """ValueError when the nonce came before with another body: a replay. With the
        same body it is the provider's own redelivery, taken (its events are duplicates)."""
        digest = hashlib.sha256(body).hexdigest()
        key = f"{self.stream}:nonce:{name}:" + hashlib.sha256(nonce.value.encode()).hexdigest()
        seconds = max(1, math.ceil(min(nonce.seconds, MAX_NONCE_SECONDS)))
        if await self.redis.set(key, digest, nx=True, ex=seconds):
            return
        seen = await self.redis.get(key)
        if seen is not None and text_of(seen) != digest:
            raise ValueError("replayed: this signature was used before for another body")


class _Calls:
    """A plugin's ``verify_receipt`` then ``parse_receipts`` of one callback, run in a
    worker thread as one call: what each said or raised, and the step it is at. A
    thread that hangs cannot be stopped, but the request is answered: once ``late``,
    nothing the thread does after is kept, and it parses nothing more."""

    def __init__(self, plugin: Any, headers: Mapping[str, str], body: bytes) -> None:
        self.plugin, self.headers, self.body = plugin, headers, body
        self.step = "verify_receipt"
        self.verified: Any = None
        self.refused: Exception | None = None
        self.parsed: list[ReceiptEvent] = []
        self.unread: Exception | None = None
        self._lock = threading.Lock()
        self._abandoned = False

    def __call__(self) -> None:
        try:
            verified = self.plugin.verify_receipt(self.headers, self.body)
        except Exception as exc:
            self._keep(refused=exc)
            return
        if not self._keep(verified=verified, step="parse_receipts"):
            return
        try:  # (listed here: a plugin's generator runs in this thread, in the budget)
            self._keep(parsed=list(self.plugin.parse_receipts(self.headers, self.body)))
        except Exception as exc:
            self._keep(unread=exc)

    def _keep(self, **said: Any) -> bool:
        """Keep what a step said, unless the budget ran out first (then False)."""
        with self._lock:
            if self._abandoned:
                return False
            for name, value in said.items():
                setattr(self, name, value)
            return True

    def late(self, budget: float) -> str:
        """The budget ran out: the step it ran out in fails; returns that step."""
        with self._lock:
            self._abandoned = True
            said = TimeoutError(f"{self.step} took longer than {budget:g} s")
            if self.step == "verify_receipt":
                self.refused = said
            else:
                self.unread = said
            return self.step


def unreadable(name: str, exc: Exception) -> Unprocessable:
    """What the sender hears when its vendor's parse_receipts failed it (the log names
    the error; the answer does not)."""
    log.warning("receipt.parse_failed", vendor=name, error=repr(exc)[:300])
    return Unprocessable(f"the {name} vendor could not read this receipt", code="invalid_receipt")


def checked(events: list[ReceiptEvent]) -> list[ReceiptEvent]:
    """The events, each with an event id and a known status, the same event once (the
    first of its id is kept); Unprocessable naming the first that is wrong."""
    if len(events) > MAX_EVENTS:
        raise Unprocessable(f"at most {MAX_EVENTS} receipts per callback", code="too_many")
    for index, event in enumerate(events):
        if not event.event_id.strip() or len(event.event_id) > MAX_EVENT_ID:
            raise Unprocessable(
                f"receipt {index} has no usable eventId: every receipt needs one of 1 to "
                f"{MAX_EVENT_ID} characters, unique at the vendor",
                code="invalid_receipt",
                details={"index": index, "field": "eventId"},
            )
        if to_utc(event.at) is None:
            raise Unprocessable(
                f"receipt {index} has a timestamp outside the dates crmd supports ({DATE_RANGE})",
                code="invalid_receipt",
                details={"index": index, "field": "timestamp"},
            )
        if event.status not in REPORTED:
            raise Unprocessable(
                f"receipt {index} has the unknown status {event.status!r}; statuses are {STATUSES}",
                code="invalid_receipt",
                details={"index": index, "field": "status"},
            )
    first: dict[str, ReceiptEvent] = {}
    for event in events:
        at = to_utc(event.at)
        first.setdefault(event.event_id, msgspec.structs.replace(event, at=at))
    return list(first.values())
