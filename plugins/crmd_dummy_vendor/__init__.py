"""crmd's dummy vendor: behaves like a real messaging vendor, delivers nothing.

It accepts a batch, answers with vendor message ids, and after a delay posts signed
delivery receipts back to crmd over HTTP: about 90% SENT and 10% FAILED by default.
Settings, in ``[plugins.dummy_vendor]``:

    failure_rate = 0.1       # share of messages that FAIL
    delay_min = 1.0          # seconds before the receipts are posted
    delay_max = 3.0
    duplicate_rate = 0.0     # share of receipt posts sent twice (and out of order)
    seed = 7                 # reproducible outcomes
    rate = 1000              # messages per second it accepts
    receipts = true          # false: a no-op vendor that accepts and never calls back
    callback_url = ""        # default: this crmd's /api/v1/deliveryReceipt/dummy_vendor
    secret = ""              # signing secret ($env:NAME or $file:/path); default: the
                             # plugin's own, derived from crmd's secret
    url = ""                 # HTTP mode: the address of a `crmd dummy-vendor` server
    callback_retry_seconds = 3600    # how long a refused callback is retried
    callback_retry_delay = 0.5       # the first retry's wait, doubled each time
    callback_retry_max_delay = 60    # the longest wait between retries
    enabled = true

In HTTP mode the plugin sends each batch over HTTP to a separate vendor server
(``crmd dummy-vendor --port 9100``, then ``url = "http://127.0.0.1:9100"``), which
answers and calls back exactly as the in-process simulation does: real traffic to watch.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import aiohttp
import msgspec
import structlog

from crmd.plugins import (
    Accepted,
    CheckResult,
    Failed,
    MessageStatus,
    OutgoingMessage,
    PluginContext,
    ReceiptEvent,
    Retry,
    SendResult,
    SignatureError,
    hookimpl,
    signed_headers,
    verify,
)

NAME = "dummy_vendor"
MAX_REMEMBERED = 200_000
log = structlog.get_logger(__name__)


class Receipt(msgspec.Struct, rename="camel", omit_defaults=True):
    """The receipt body crmd understands (one object, or a list of them)."""

    status: str
    timestamp: datetime
    event_id: str
    message_id: str = ""
    vendor_message_id: str = ""
    campaign_id: str = ""
    customer_id: str = ""
    reason: str = ""


_decode = msgspec.json.Decoder(Receipt | list[Receipt]).decode
_decode_results = msgspec.json.Decoder(list[Accepted | Failed | Retry]).decode


class SendRequest(msgspec.Struct):
    callbackUrl: str
    messages: list[OutgoingMessage]


Share = Annotated[float, msgspec.Meta(ge=0, le=1)]
Seconds = Annotated[float, msgspec.Meta(ge=0, le=86_400)]


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.dummy_vendor]``; see the module's docstring."""

    failure_rate: Share = 0.1
    delay_min: Seconds = 1.0
    delay_max: Seconds = 3.0
    duplicate_rate: Share = 0.0
    seed: int | None = None
    rate: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] = 1000
    receipts: bool = True
    callback_url: str = ""
    secret: str = ""
    url: str = ""
    callback_retry_seconds: Seconds = 3600
    callback_retry_delay: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 0.5
    callback_retry_max_delay: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60

    def __post_init__(self) -> None:
        if self.delay_max < self.delay_min:
            raise ValueError("delay_max: must not be less than delay_min")


class DummyVendor:
    name = NAME

    def __init__(
        self, settings: Settings, http: aiohttp.ClientSession, secret: str, callback_url: str
    ) -> None:
        self.http = http
        self.secret = settings.secret or secret
        self.callback_url = settings.callback_url or callback_url
        self.failure_rate = settings.failure_rate
        self.delay = (settings.delay_min, settings.delay_max)
        self.duplicate_rate = settings.duplicate_rate
        self.rate = settings.rate
        self.rng = random.Random(settings.seed)  # noqa: S311 - simulated outcomes
        self.accepted: dict[str, str] = {}
        """Our message id → its vendor id: the same message is never delivered twice."""
        self.tasks: set[asyncio.Task[None]] = set()
        self.url = settings.url
        self.receipts = settings.receipts
        self.retry_for = settings.callback_retry_seconds
        self.retry_delay = settings.callback_retry_delay
        self.retry_max_delay = settings.callback_retry_max_delay

    def rate_limit(self) -> float:
        return self.rate

    async def send(self, messages: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        if self.url:
            return await self._send_over_http(messages)
        return self.simulate(messages, self.callback_url)

    async def _send_over_http(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        body = msgspec.json.encode(
            {
                "callbackUrl": self.callback_url,
                "messages": [msgspec.structs.asdict(m) for m in messages],
            }
        )
        async with self.http.post(
            f"{self.url.rstrip('/')}/send",
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=15),
        ) as response:
            response.raise_for_status()
            return list(_decode_results(await response.read()))

    def simulate(self, messages: Sequence[OutgoingMessage], callback_url: str) -> list[SendResult]:
        """What a real vendor does: accept, answer, and call back later."""
        if not self.receipts:  # no-op: a stable id per message, nothing remembered
            return [Accepted(m.message_id, f"dv_{m.message_id}") for m in messages]
        results: list[SendResult] = []
        receipts: list[Receipt] = []
        now = datetime.now(UTC)
        for message in messages:
            if message.message_id in self.accepted:  # a resend after a crash: same answer
                results.append(Accepted(message.message_id, self.accepted[message.message_id]))
                continue
            if not message.recipient:
                results.append(Failed(message.message_id, "no recipient address"))
                continue
            vendor_id = f"dv_{uuid.uuid4().hex}"
            self.accepted[message.message_id] = vendor_id
            if len(self.accepted) > MAX_REMEMBERED:  # bounded: forget the oldest
                del self.accepted[next(iter(self.accepted))]
            results.append(Accepted(message.message_id, vendor_id))
            failed = self.rng.random() < self.failure_rate
            receipts.append(
                Receipt(
                    status=MessageStatus.FAILED if failed else MessageStatus.SENT,
                    timestamp=now,
                    event_id=f"evt_{uuid.uuid4().hex}",
                    message_id=message.message_id,
                    vendor_message_id=vendor_id,
                    reason="recipient unreachable" if failed else "",
                )
            )
        if receipts:
            self._later(receipts, callback_url)
        return results

    def _later(self, receipts: list[Receipt], callback_url: str) -> None:
        posts = [receipts]
        if self.duplicate_rate and self.rng.random() < self.duplicate_rate:
            half = receipts[: max(1, len(receipts) // 2)]
            posts = [half, receipts]  # a duplicate, and the halves out of order
            self.rng.shuffle(posts)
        for body in posts:
            delay = self.rng.uniform(*self.delay)
            task = asyncio.create_task(self._post(body, delay, callback_url))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _post(self, receipts: list[Receipt], delay: float, callback_url: str) -> None:
        """Post the receipts as a real vendor does: until crmd takes them (any answer
        but a 5xx or 429), retrying with back-off for ``callback_retry_seconds``, so a
        crmd that is down or restarting still gets every receipt."""
        await asyncio.sleep(delay)
        body = msgspec.json.encode(receipts)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.retry_for
        attempt = 0
        while True:
            headers = signed_headers(self.secret, f"msg_{uuid.uuid4().hex}", int(time.time()), body)
            headers["Content-Type"] = "application/json"
            wait = min(self.retry_max_delay, self.retry_delay * 2**attempt)
            try:
                async with self.http.post(
                    callback_url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    if response.status < 500 and response.status != 429:
                        return
                    wait = max(wait, _retry_after(response.headers.get("Retry-After")))
                    problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            attempt += 1
            if loop.time() + wait > give_up:
                log.error(
                    "dummy_vendor.callback_given_up",
                    attempts=attempt,
                    error=problem,
                    receipts=len(receipts),
                )
                return
            log.warning(
                "dummy_vendor.callback_failed",
                attempt=attempt,
                error=problem,
                retry_in=round(wait, 2),
            )
            await asyncio.sleep(wait)

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> None:
        try:
            verify(self.secret, headers, body, now=time.time())
        except SignatureError as exc:
            raise ValueError(str(exc)) from None

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        try:
            decoded = _decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"unreadable receipt: {exc}") from None
        receipts = decoded if isinstance(decoded, list) else [decoded]
        return [
            ReceiptEvent(
                status=r.status.upper(),
                at=r.timestamp,
                event_id=r.event_id,
                message_id=r.message_id,
                vendor_message_id=r.vendor_message_id,
                campaign_id=r.campaign_id,
                customer_id=r.customer_id,
                reason=r.reason,
            )
            for r in receipts
        ]

    async def check(self) -> CheckResult:
        return CheckResult(ok=bool(self.secret), detail=f"callbacks to {self.callback_url}")

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _retry_after(header: str | None) -> float:
    """Seconds from a Retry-After header (a number; dates are not worth a vendor's
    while here), else 0."""
    try:
        return min(float(header or 0), 3600.0)
    except ValueError:
        return 0.0


@hookimpl
def crmd_vendors(context: PluginContext) -> list[DummyVendor]:
    # Both ends live in crmd (or in `crmd dummy-vendor`, which derives the same secret):
    # the plugin's own secret signs and verifies the receipts.
    settings = context.settings(Settings)
    return [DummyVendor(settings, context.http, context.secret, context.receipt_url)]


def gateway_app(vendor: DummyVendor) -> Any:
    """The HTTP mode's vendor server: ``POST /send`` with ``{"callbackUrl", "messages"}``
    answers one result per message and calls back with signed receipts later."""
    from aiohttp import web

    async def send(request: web.Request) -> web.Response:
        try:
            sent = msgspec.json.decode(await request.read(), type=SendRequest)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        results = vendor.simulate(sent.messages, sent.callbackUrl)
        log.info("dummy_vendor.batch", messages=len(sent.messages))
        return web.Response(body=msgspec.json.encode(results), content_type="application/json")

    async def close(_: web.Application) -> None:
        await vendor.close()

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/send", send)
    app.on_cleanup.append(close)
    return app
