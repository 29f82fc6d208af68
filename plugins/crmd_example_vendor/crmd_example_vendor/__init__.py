"""An example third-party vendor for crmd: a generic HTTP SMS gateway.

It is what docs/writing-a-vendor-plugin.md walks through. Settings, in
``[plugins.example_vendor]``: ``url`` (the gateway's send endpoint), ``api_key``,
``receipt_secret`` (HMAC key of its callbacks) and ``rate`` (messages per second).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated

import aiohttp
import msgspec

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
    hookimpl,
)

NAME = "example_vendor"
STATES = {"delivered": MessageStatus.DELIVERED, "failed": MessageStatus.FAILED}
"""The gateway's states as crmd's statuses (any other is SENT)."""


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[plugins.example_vendor]``: decoded by crmd from the file and the environment
    alike; a bad value stops crmd with a line naming the key."""

    url: str = ""
    api_key: str = ""
    receipt_secret: str = ""
    rate: Annotated[float, msgspec.Meta(gt=0)] = 10.0


class GatewayVendor:
    name = NAME

    def __init__(self, settings: Settings, http: aiohttp.ClientSession) -> None:
        self.url = settings.url
        self.api_key = settings.api_key
        self.secret = settings.receipt_secret.encode()
        self.rate = settings.rate
        self.http = http

    def rate_limit(self) -> float:
        return self.rate

    async def send(self, messages: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        payload = {
            "messages": [
                {"ref": m.message_id, "to": m.phone or m.recipient, "text": m.text}
                for m in messages
            ]
        }
        async with self.http.post(
            self.url,
            json=payload,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=aiohttp.ClientTimeout(total=15),
        ) as response:
            if response.status == 429 or response.status >= 500:
                wait = float(response.headers.get("Retry-After", "5"))
                return [Retry(m.message_id, wait, f"HTTP {response.status}") for m in messages]
            body = await response.json()
        results: list[SendResult] = []
        for item in body["results"]:
            if item["status"] == "queued":
                results.append(Accepted(item["ref"], item["id"]))
            else:
                results.append(Failed(item["ref"], item.get("error", "refused")))
        return results

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> None:
        expected = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-Gateway-Signature", "")):
            raise ValueError("bad gateway signature")

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        import json

        try:
            items = json.loads(body)["events"]
            return [
                ReceiptEvent(
                    status=STATES.get(e["state"], MessageStatus.SENT),
                    at=datetime.fromtimestamp(e["ts"], UTC),
                    event_id=e["event"],
                    vendor_message_id=e["id"],
                )
                for e in items
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"unreadable gateway receipt: {exc}") from None

    async def check(self) -> CheckResult:
        return CheckResult(
            ok=bool(self.url and self.api_key),
            detail="url and api_key are set" if self.url else "no url",
        )

    async def close(self) -> None:
        return None


@hookimpl
def crmd_vendors(context: PluginContext) -> list[GatewayVendor]:
    settings = context.settings(Settings)
    if not settings.url:
        return []  # not configured: offer nothing
    return [GatewayVendor(settings, context.http)]
