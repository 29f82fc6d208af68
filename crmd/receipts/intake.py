"""Receiving a vendor's receipt callback: the vendor's plugin verifies and reads it,
each step under a time limit, crmd checks what it read, and the events are queued for
the receipts actor. A vendor that raises or hangs refuses its own callback (4xx, named
in the log); it never stalls a request or leaks a 500."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from crmd.campaigns.vendors import Vendors
from crmd.errors import BadRequest, NotFound, Unauthorized, Unprocessable
from crmd.http.bodies import NESTED_TOO_DEEP
from crmd.messages import REPORTED
from crmd.plugins.vendor import ReceiptEvent, Vendor
from crmd.receipts import batch
from crmd.store.limits import DATE_RANGE, to_utc
from crmd.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)
MAX_EVENTS = 10_000
MAX_EVENT_ID = 200
PLUGIN_BUDGET = 5.0
"""Seconds a vendor's verify_receipt or parse_receipts may take."""
STATUSES = ", ".join(REPORTED)


class ReceiptIntake:
    def __init__(
        self,
        vendors: Vendors,
        redis: Redis,
        stream: str,
        metrics: Metrics,
        budget: float = PLUGIN_BUDGET,
    ) -> None:
        self.vendors = vendors
        self.redis = redis
        self.stream = stream
        self.metrics = metrics
        self.budget = budget

    async def receive(
        self, vendor_name: str | None, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, int]:
        """Queue a callback's receipts; returns (accepted, duplicates)."""
        try:
            vendor = self.vendors.get(vendor_name)
        except Unprocessable:
            raise NotFound(f"no vendor {vendor_name!r}") from None
        try:
            await self._in_time(vendor, "verify_receipt", vendor.verify_receipt, headers, body)
        except Exception as exc:  # a vendor bug must fail closed, never open
            self.metrics.receipts.labels(vendor.name, "rejected").inc()
            log.warning("receipt.rejected", vendor=vendor.name, reason=str(exc)[:200])
            raise Unauthorized(f"receipt not accepted by {vendor.name}: {exc}"[:300]) from None
        try:
            parsed: Any = await self._in_time(
                vendor, "parse_receipts", vendor.parse_receipts, headers, body
            )
            events = list(parsed)
        except RecursionError:
            raise BadRequest(NESTED_TOO_DEEP, code="bad_json") from None
        except ValueError as exc:
            raise Unprocessable(f"{vendor.name}: {exc}"[:500], code="invalid_receipt") from None
        except Exception as exc:  # a vendor's bug: the sender hears it, the log names it
            log.warning("receipt.parse_failed", vendor=vendor.name, error=repr(exc)[:300])
            raise Unprocessable(
                f"the {vendor.name} vendor could not read this receipt", code="invalid_receipt"
            ) from None
        unique = checked(events)
        await self.redis.xadd(
            self.stream, {batch.FIELD: batch.encode(batch.ReceiptBatch(vendor.name, unique))}
        )
        self.metrics.receipts.labels(vendor.name, "accepted").inc(len(unique))
        return len(unique), len(events) - len(unique)

    async def _in_time(
        self, vendor: Vendor, name: str, call: Callable[..., Any], *args: object
    ) -> Any:
        """The vendor's synchronous ``call`` in a worker thread, under the budget. (A
        thread that hangs cannot be stopped, but the request is answered.)"""
        try:
            return await asyncio.wait_for(asyncio.to_thread(call, *args), self.budget)
        except TimeoutError:
            log.error("receipt.plugin_timeout", vendor=vendor.name, call=name, seconds=self.budget)
            raise TimeoutError(f"{name} took longer than {self.budget:g} s") from None


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
