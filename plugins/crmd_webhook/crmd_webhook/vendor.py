"""The webhook vendor: a batch is one signed POST, the gateway's answer says what
became of each message, and its receipts come back signed the same way."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import aiohttp
import structlog

from crmd.plugins import (
    CheckResult,
    Failed,
    OutgoingMessage,
    ReceiptEvent,
    Retry,
    SendResult,
    SignatureError,
    VendorMisconfigured,
    signed_headers,
    verify,
)
from crmd_webhook import contract
from crmd_webhook.settings import Settings

NAME = "webhook"
MISCONFIGURED = frozenset({401, 403, 404, 405})
"""Answers that no retry changes and that no message deserves: the wrong url or secret."""
DEFAULT_WAIT = 5.0
log = structlog.get_logger(__name__)


class WebhookVendor:
    name = NAME

    def __init__(self, settings: Settings, http: aiohttp.ClientSession, receipt_url: str) -> None:
        self.settings = settings
        self.http = http
        self.receipt_url = receipt_url

    def rate_limit(self) -> float:
        return self.settings.rate

    async def send(self, messages: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        """5xx, 429, a timeout or an unreadable answer: all retried (the same ids, the
        same webhook-id); 401, 403, 404, 405: VendorMisconfigured; any other 4xx: every
        message of the batch failed, with the gateway's words."""
        body = contract.batch_body(messages, self.receipt_url)
        headers = signed_headers(
            self.settings.secret, contract.batch_id(messages), int(time.time()), body
        )
        headers["Content-Type"] = "application/json"
        try:
            async with self.http.post(
                self.settings.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            ) as response:
                status, answer = response.status, await response.read()
                retry_after = _seconds(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            said = self.settings.shown(f"{type(exc).__name__} {exc}")
            reason = f"the gateway did not answer: {said}".strip()
            return [Retry(m.message_id, DEFAULT_WAIT, reason[:300]) for m in messages]
        if status in MISCONFIGURED:
            raise VendorMisconfigured(
                f"the gateway at {self.settings.shown_url} answered HTTP {status}: "
                "check url and secret"
            )
        if status >= 500 or status == 429:
            wait = retry_after or DEFAULT_WAIT
            return [Retry(m.message_id, wait, f"HTTP {status}") for m in messages]
        if status >= 300:
            reason = f"HTTP {status}: {_snippet(answer)}"
            return [Failed(m.message_id, reason) for m in messages]
        try:
            return contract.read_answer(answer)
        except ValueError as exc:  # it may have taken them: the same ids are sent again
            log.error("webhook.unreadable_answer", error=str(exc)[:300])
            return [Retry(m.message_id, DEFAULT_WAIT, str(exc)[:300]) for m in messages]

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> None:
        try:
            verify(self.settings.secret, headers, body, now=time.time())
        except SignatureError as exc:
            raise ValueError(str(exc)) from None

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        webhook_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id", "")
        return contract.read_receipts(body, webhook_id)

    async def check(self) -> CheckResult:
        """Whether the gateway answers at all (an OPTIONS request: any HTTP answer will
        do; the secret is proven by the first batch)."""
        try:
            async with self.http.options(
                self.settings.url, timeout=aiohttp.ClientTimeout(total=self.settings.timeout)
            ) as response:
                return CheckResult(
                    ok=True, detail=f"{self.settings.shown_url} answers ({response.status})"
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            said = self.settings.shown(f"{type(exc).__name__} {exc}")
            return CheckResult(ok=False, detail=f"{self.settings.shown_url}: {said}")

    async def close(self) -> None:
        return None


def _seconds(header: str | None) -> float:
    """A Retry-After in seconds (dates are not worth a gateway's while), else 0."""
    try:
        return min(max(float(header or 0), 0.0), contract.MAX_AFTER)
    except ValueError:
        return 0.0


def _snippet(body: bytes) -> str:
    return " ".join(body.decode("utf-8", "replace").split())[:200] or "no explanation"
