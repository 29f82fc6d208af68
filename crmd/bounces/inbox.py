"""What the listener does with each mail: read it, find the message it names, and queue
its receipt event on the receipts stream, where the receipts actor applies it as it
applies every other (``crmd.receipts.apply``), suppressions included.

A mail that is of no use (not a report, broken, naming no message of crmd's) is dropped
with a counter and a log line, and still answered 250: a refusal would only have the
sending server retry it, or bounce the bounce. Only when crmd's own database or Redis
cannot be reached is the answer 451, so that the report comes again once they are back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from crmd.bounces.naming import forged_token, named_message, receipt_for
from crmd.bounces.reports import Unusable, read_report
from crmd.messages import parse_send_key
from crmd.receipts import batch
from crmd.telemetry.metrics import Metrics
from crmd.verp import ReturnPaths

log = structlog.get_logger(__name__)
REPORTER = "bounces"
"""The vendor name the listener's receipt batches carry."""
ACCEPTED = "250 2.0.0 OK"
TRY_LATER = "451 4.3.0 crmd cannot store reports now; try again later"
NOT_OURS = "550 5.1.1 not an address of this bounce domain"


class Inbox:
    def __init__(
        self,
        return_paths: ReturnPaths,
        message_domain: str,
        db: AsyncDatabase[dict[str, Any]],
        redis: Redis,
        stream: str,
        metrics: Metrics,
    ) -> None:
        self.return_paths = return_paths
        self.message_domain = message_domain
        """The domain of the Message-IDs crmd's messages carry (the smtp from domain)."""
        self.db = db
        self.redis = redis
        self.stream = stream
        self.metrics = metrics

    def accepts(self, address: str) -> bool:
        """Mail is taken for any address of the bounce domain, and no other."""
        return self.return_paths.is_ours(address)

    async def receive(self, raw: bytes, recipients: Sequence[str]) -> str:
        """The SMTP answer to one mail, after doing what it says."""
        try:
            outcome = await self._take(raw, recipients)
        except (PyMongoError, RedisError, OSError, TimeoutError) as exc:
            log.warning("bounce.not_stored", error=repr(exc)[:300])
            return TRY_LATER
        except Exception:  # a bug: the same mail would fail again, so it is not retried
            log.exception("bounce.failed")
            outcome = "error"
        self.metrics.bounce_mails.labels(outcome).inc()
        return ACCEPTED

    def too_large(self) -> None:
        self.metrics.bounce_mails.labels("too_large").inc()
        log.info("bounce.dropped", why="too_large")

    async def _take(self, raw: bytes, recipients: Sequence[str]) -> str:
        if forged_token(recipients, self.return_paths):  # not rescued by its Message-ID
            log.info("bounce.dropped", why="forged", size=len(raw))
            return "forged"
        report = await asyncio.to_thread(read_report, raw)  # CPU work, off the loop
        if isinstance(report, Unusable):
            log.info("bounce.dropped", why=report.why, detail=report.detail, size=len(raw))
            return report.why
        named = named_message(report, recipients, self.return_paths, self.message_domain)
        if named is None:
            log.info("bounce.dropped", why="unknown_message", status=report.status)
            return "unknown_message"
        if named.forged:
            log.warning("bounce.forged_token", matched_by=named.how)
        if not await self._sent_by_us(named.key):
            log.info("bounce.dropped", why="unknown_message", message=named.key, how=named.how)
            return "unknown_message"
        event = receipt_for(report, named.key, datetime.now(UTC))
        entry = batch.ReceiptBatch(REPORTER, [event], list(self.return_paths.vendors))
        await self.redis.xadd(self.stream, {batch.FIELD: batch.encode(entry)})
        log.info("bounce.queued", message=named.key, status=event.status, how=named.how)
        return "queued"

    async def _sent_by_us(self, key: str) -> bool:
        """Whether the key is a message of this round that a covered vendor was handed
        (one read by _id, across tenants on purpose: the log decides the tenant)."""
        log_id, round_ = parse_send_key(key)
        found = await self.db.communication_log.find_one(
            {"_id": log_id}, projection={"vendor": 1, "round": 1}
        )
        return (
            found is not None
            and found.get("vendor") in self.return_paths.vendors
            and found.get("round", 0) == round_
        )
