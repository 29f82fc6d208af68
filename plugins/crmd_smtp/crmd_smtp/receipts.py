"""SENT receipts for what the relay took. SMTP has no delivery receipts: the relay's
250 after the message is the last word, and SENT ("the relay has it") is what crmd can
honestly record. The plugin posts those receipts to crmd's own receipt route, signed with
its own secret, as any vendor would; so a receipt is counted once, through the same path
and checks as every other vendor's, in whichever crmd process takes it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import aiohttp
import msgspec
import structlog

from crmd.plugins.vendor import ReceiptEvent
from crmd.receipts.signature import SignatureError, signed_headers, verify

log = structlog.get_logger(__name__)
PER_POST = 1000
FIRST_WAIT = 0.5
"""Seconds before the first post: the receipts of a few batches go together."""


class SentReceipt(msgspec.Struct, rename="camel", frozen=True):
    message_id: str
    vendor_message_id: str
    timestamp: datetime


_decode = msgspec.json.Decoder(list[SentReceipt]).decode


class SentReceipts:
    def __init__(
        self, http: aiohttp.ClientSession, url: str, secret: str, retry_for: float = 3600
    ) -> None:
        self.http = http
        self.url = url
        self.secret = secret
        self.retry_for = retry_for
        self.pending: list[SentReceipt] = []
        self.task: asyncio.Task[None] | None = None

    def add(self, receipts: Sequence[SentReceipt]) -> None:
        """Queue receipts; they are posted shortly, in the background."""
        self.pending.extend(receipts)
        if self.pending and (self.task is None or self.task.done()):
            self.task = asyncio.create_task(self._post_pending())

    async def _post_pending(self) -> None:
        await asyncio.sleep(FIRST_WAIT)
        while self.pending:
            batch, self.pending = self.pending[:PER_POST], self.pending[PER_POST:]
            await self._post(batch)

    async def _post(self, batch: list[SentReceipt]) -> None:
        """Until crmd takes them (any answer but 5xx or 429: a 4xx will not change),
        with back-off, for ``retry_for`` seconds: a crmd restarting still gets them."""
        body = msgspec.json.encode(batch)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.retry_for
        wait = 0.5
        while True:
            headers = signed_headers(self.secret, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
            headers["Content-Type"] = "application/json"
            try:
                async with self.http.post(
                    self.url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
                ) as response:
                    if response.status < 500 and response.status != 429:
                        if response.status >= 400:
                            log.error("smtp.receipts_refused", status=response.status)
                        return
                    problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if loop.time() + wait > give_up:
                log.error("smtp.receipts_given_up", receipts=len(batch), error=problem)
                return
            log.warning("smtp.receipts_retry", error=problem, retry_in=wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, 60.0)

    async def close(self, budget: float = 5.0) -> None:
        """Post what is queued, within ``budget`` seconds; what is left then stays
        PENDING until the campaign's receipt window closes."""
        if self.task is None or self.task.done():
            return
        try:
            await asyncio.wait_for(self.task, budget)
        except TimeoutError:
            log.warning("smtp.receipts_unposted", receipts=len(self.pending))


def verify_receipt(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    try:
        verify(secret, headers, body, now=time.time())
    except SignatureError as exc:
        raise ValueError(str(exc)) from None


def parse_receipts(body: bytes) -> list[ReceiptEvent]:
    try:
        receipts = _decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"unreadable receipt: {exc}") from None
    return [
        ReceiptEvent(
            status="SENT",
            at=r.timestamp,
            event_id=f"smtp-sent-{r.message_id}",
            message_id=r.message_id,
            vendor_message_id=r.vendor_message_id,
        )
        for r in receipts
    ]
