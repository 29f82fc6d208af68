"""What every provider's test does: send a campaign through the smtp vendor to a real
relay (aiosmtpd), read crmd's id back from each message as the provider would, post the
provider's events, and wait for crmd's logs to show them."""

from __future__ import annotations

import asyncio
import email
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any

import aiohttp
from aiosmtpd.smtp import SMTP, Envelope, Session

from crmd.testing import RunningCrmd, load_customers, wait_for_campaign

SMTP_SETTINGS = {"host": "127.0.0.1", "from": "Shop <news@shop.example>", "tls": "none"}


@dataclass
class Mailbox:
    """A relay that takes every message and keeps it."""

    port: int = 0
    received: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(parsed)
        return "250 queued"

    def by_recipient(self) -> dict[str, EmailMessage]:
        return {str(m["To"]): m for m in self.received}


async def start_mailbox(box: Mailbox) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(box, hostname="relay.test"), "127.0.0.1", 0)
    box.port = server.sockets[0].getsockname()[1]
    return server


@dataclass
class Sent:
    campaign: str
    mails: dict[str, EmailMessage]
    """Recipient → the message the relay received."""

    def crmd_id(self, recipient: str) -> str:
        """crmd's id for the recipient's message, as the provider reads it from the mail."""
        return str(self.mails[recipient]["X-Crmd-Message-Id"])


async def send_campaign(client: aiohttp.ClientSession, mailbox: Mailbox, n: int) -> Sent:
    rows = "".join(f"K{i},Person{i},p{i}@x.io,100\n" for i in range(n))
    await load_customers(client, "customer_external_id,name,email,spend\n" + rows)
    made = await client.post(
        "/api/v1/campaigns",
        json={"name": "Sale", "subject": "Sale", "message": "Hi", "rule": "spend > 50"},
    )
    assert made.status == 201, await made.text()
    campaign = (await made.json())["id"]
    done = await wait_for_campaign(client, campaign, "completed", "error")
    assert done["status"] == "completed", done
    mails = mailbox.by_recipient()
    assert len(mails) == n
    return Sent(campaign, mails)


async def log_of(server: RunningCrmd, recipient: str) -> dict[str, Any]:
    found = await server.crmd.db.communication_log.find_one({"recipient": recipient})
    assert found is not None
    return found


async def wait_for_status(
    server: RunningCrmd, recipient: str, status: str, timeout: float = 20
) -> dict[str, Any]:
    """The recipient's log once its status is ``status``."""
    async with asyncio.timeout(timeout):
        while True:
            log = await log_of(server, recipient)
            if log["status"] == status:
                return log
            await asyncio.sleep(0.1)


async def wait_for_time(
    server: RunningCrmd, recipient: str, status: str, timeout: float = 20
) -> dict[str, Any]:
    """The recipient's log once it holds a first-seen time for ``status`` (a
    SOFT_BOUNCED is recorded so, never as the status)."""
    async with asyncio.timeout(timeout):
        while True:
            log = await log_of(server, recipient)
            if status in log.get("times", {}):
                return log
            await asyncio.sleep(0.1)


async def suppressed(server: RunningCrmd) -> dict[str, str]:
    """Suppressed address → its source."""
    return {d["email"]: d["source"] async for d in server.crmd.db.suppressions.find({})}


async def wait_for_suppression(
    server: RunningCrmd, address: str, timeout: float = 20
) -> dict[str, str]:
    """Every suppressed address once ``address`` is among them (a bounce's suppression
    is written just after its log)."""
    async with asyncio.timeout(timeout):
        while address not in (held := await suppressed(server)):
            await asyncio.sleep(0.1)
    return held


async def queued(server: RunningCrmd) -> int:
    """Receipt batches on the receipts stream so far."""
    length: int = await server.crmd.redis.xlen(server.crmd.streams.receipts)
    return length


def counted(server: RunningCrmd, vendor: str, outcome: str) -> float:
    """crmd's own counter of receipts by vendor and outcome."""
    for metric in server.crmd.metrics.receipts.collect():
        for sample in metric.samples:
            wanted = {"vendor": vendor, "outcome": outcome}
            if sample.name.endswith("_total") and sample.labels == wanted:
                return float(sample.value)
    return 0.0


async def post(
    server: RunningCrmd, name: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST to /api/v1/deliveryReceipt/<name> as the provider does (no crmd login)."""
    async with (
        aiohttp.ClientSession() as provider,
        provider.post(
            f"{server.url}/api/v1/deliveryReceipt/{name}", data=body, headers=headers or {}
        ) as answer,
    ):
        return answer.status, await answer.json(content_type=None)


TEN_MB = b"[" + b'{"event": "open"},' * (10 * 1024 * 1024 // 18) + b"{}]"
