"""A crmd that sends through the smtp vendor to a real relay (aiosmtpd) with its bounces
listener on, and the calls the listener's tests make."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from crmd.services.children import free_port
from crmd.services.embedded import Urls
from crmd.testing import RunningCrmd, load_customers, running_crmd, signed_in, wait_for_campaign
from crmd.verp import ReturnPaths

SENDER = "Shop <news@shop.example>"


@dataclass
class Relay:
    """The relay crmd sends through: it keeps each message's envelope."""

    port: int = 0
    envelopes: dict[str, str] = field(default_factory=dict)
    """Recipient → MAIL FROM of the last message to them."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for recipient in envelope.rcpt_tos:
            self.envelopes[recipient] = str(envelope.mail_from)
        return "250 queued"


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    loop = asyncio.get_running_loop()
    found = Relay()
    server = await loop.create_server(
        lambda: SMTP(found, hostname="relay.test", loop=loop), "127.0.0.1", 0
    )
    found.port = server.sockets[0].getsockname()[1]
    yield found
    server.close()


@dataclass
class Bounces:
    crmd: RunningCrmd
    client: aiohttp.ClientSession
    port: int
    relay: Relay

    @property
    def paths(self) -> ReturnPaths:
        return ReturnPaths.from_secret(self.crmd.crmd.jwt_secret, "news", "shop.example")

    async def send_campaign(self, rule: str = "spend > 50") -> str:
        created = await self.client.post(
            "/api/v1/campaigns",
            json={"name": "Sale", "subject": "A sale", "message": "Hi {first_name|there}."}
            | {"rule": rule, "vendor": "smtp"},
        )
        assert created.status == 201, await created.text()
        campaign: str = (await created.json())["id"]
        done = await wait_for_campaign(self.client, campaign, "completed", "error")
        assert done["status"] == "completed", done
        return campaign

    async def logs(self, campaign: str) -> dict[str, dict[str, Any]]:
        found = self.crmd.crmd.db.communication_log.find({"campaignId": campaign})
        return {log["recipient"]: log async for log in found}

    async def mail(self, raw: bytes, to: str, sender: str = "") -> tuple[int, str]:
        """Mail ``raw`` to the listener; its answer to the message (or to RCPT)."""
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port, timeout=30)
        await client.connect()
        try:
            _, message = await client.sendmail(sender, [to], raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return exc.recipients[0].code, exc.recipients[0].message
        except aiosmtplib.SMTPResponseException as exc:
            return exc.code, exc.message
        finally:
            client.close()
        return 250, message  # (sendmail raises for any other answer)

    def dropped(self, outcome: str) -> float:
        metric = self.crmd.crmd.metrics.bounce_mails.labels(outcome)
        return float(metric._value.get())

    async def suppressed(self) -> dict[str, dict[str, Any]]:
        found = self.crmd.crmd.db.suppressions.find({})
        return {entry["email"]: entry async for entry in found}

    async def until(self, check: Any, timeout: float = 30) -> Any:
        async with asyncio.timeout(timeout):
            while not (found := await check()):
                await asyncio.sleep(0.1)
        return found


@pytest.fixture
async def bounces(services: Urls, relay: Relay) -> AsyncIterator[Bounces]:
    port = free_port()
    smtp = {"host": "127.0.0.1", "port": relay.port, "from": SENDER, "tls": "none", "rate": 500}
    async with (
        running_crmd(
            services, {"smtp": smtp}, bounces={"host": "127.0.0.1", "port": port}
        ) as server,
        await signed_in(server.url) as client,
    ):
        rows = "".join(f"K{i},Person{i},p{i}@x.io,100\n" for i in range(6))
        await load_customers(client, "customer_external_id,name,email,spend\n" + rows)
        yield Bounces(server, client, port, relay)
