"""The SMTP vendor: each message one mail transaction on the pooled connection, and an
answer per recipient from what the relay said. The relay's 250 is the last word SMTP
gives, so a message it took is answered ``Accepted(..., sent=True)``: crmd records it
SENT as it records the hand-over, and this vendor takes no receipts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import aiosmtplib
import structlog

from crmd.plugins import (
    Accepted,
    CheckResult,
    Failed,
    OutgoingMessage,
    ReceiptEvent,
    Retry,
    SendResult,
    VendorMisconfigured,
)
from crmd_smtp.mail import answer_for, build_message, message_id_header
from crmd_smtp.relay import AUTH_CODES, Relay, RelayDown
from crmd_smtp.settings import Settings

NAME = "smtp"
BATCH_BUDGET = 25.0
"""Seconds a batch may take in all, connecting included: crmd gives it 30 s and, past
them, takes every message of the batch for unsent (those the relay took would then go
twice). A message still under way at the end is cut off and retried, with the rest."""
BEGIN_WITHIN = 20.0
"""Seconds into the batch after which no new message is begun."""
LOST_RETRY = 1.0


SENDER_REFUSED = frozenset({550, 553, 554, 555})
"""Answers to MAIL FROM that refuse the sender itself: no message can go."""
BOUNCE_SENDER_HINT = (
    ": crmd's bounces listener is on, so each message goes with an envelope sender of the "
    "bounce domain ([bounces] domain); let the relay send for it, or turn bounces off"
)


class ConnectionLost(Exception):
    """The relay hung up, or stopped answering, in the middle of a message."""


class ClosedAfter(Exception):
    """The relay answered this message, then closed the connection (a 421): its result,
    and the rest of the batch goes on a new connection."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result)
        self.result = result


async def _reset(client: aiosmtplib.SMTP) -> None:
    """RSET after a transaction that broke off on our side; ConnectionLost if the
    session cannot be trusted any more."""
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise ConnectionLost(f"connection lost: {str(exc) or 'timed out'}") from None


class SmtpVendor:
    name = NAME

    def __init__(self, settings: Settings, log: Any = None) -> None:
        self.settings = settings
        self.relay = Relay(settings)
        self.log = log if log is not None else structlog.get_logger("crmd.plugins.smtp")

    def rate_limit(self) -> float:
        return self.settings.rate

    async def send(self, messages: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        """One result per message; VendorMisconfigured when the relay refuses the login
        or the sender, which no retry would change."""
        async with self.relay.lock:
            deadline = asyncio.get_running_loop().time() + BATCH_BUDGET
            try:
                async with asyncio.timeout_at(deadline):
                    client = await self.relay.connection()
            except (RelayDown, TimeoutError) as exc:
                self.relay.drop()
                return self._unreachable(exc, messages)
            try:
                return await self._send_all(client, messages, deadline)
            except BaseException:  # cancelled part way: the connection's state is unknown
                self.relay.drop()
                raise

    async def _send_all(
        self, client: aiosmtplib.SMTP, messages: Sequence[OutgoingMessage], deadline: float
    ) -> list[SendResult]:
        loop = asyncio.get_running_loop()
        last_start = deadline - BATCH_BUDGET + BEGIN_WITHIN
        results: list[SendResult] = []
        for index, message in enumerate(messages):
            if loop.time() > last_start:
                late = "not begun in this batch's time"
                return results + [Retry(m.message_id, 0.0, late) for m in messages[index:]]
            try:
                results.append(await self._send_one(client, message, deadline))
            except ClosedAfter as closed:
                # Only this message is put off: the others were not the relay's reason.
                results.append(closed.result)
                self.relay.drop()
                try:
                    async with asyncio.timeout_at(deadline):
                        client = await self.relay.connection()
                except (RelayDown, TimeoutError) as exc:
                    return results + self._unreachable(exc, messages[index + 1 :])
            except ConnectionLost as exc:
                self.relay.drop()
                rest = messages[index:]
                self.log.warning(
                    "smtp.connection_lost",
                    relay=self.relay.where,
                    error=str(exc),
                    retried=len(rest),
                )
                return results + [Retry(m.message_id, LOST_RETRY, str(exc)) for m in rest]
        return results

    def _unreachable(
        self, exc: BaseException, messages: Sequence[OutgoingMessage]
    ) -> list[SendResult]:
        """Every message of ``messages`` retried, and one warning for them all."""
        reason = str(exc) or f"no connection to {self.relay.where} in time"
        if messages:
            self.log.warning(
                "smtp.relay_unreachable",
                relay=self.relay.where,
                error=reason,
                retried=len(messages),
            )
        return [Retry(m.message_id, LOST_RETRY, reason) for m in messages]

    def _answered(
        self, client: aiosmtplib.SMTP, message_id: str, code: int, text: str
    ) -> SendResult:
        """The relay's refusal of one message as its result, logged with the relay's code
        and words; ClosedAfter(result) when the answer ended the session: aiosmtplib
        closes the connection on a 421 (to MAIL, RCPT or DATA alike), and the next
        message must not be tried on it."""
        result = answer_for(message_id, code, text)
        self.log.info("smtp.recipient_refused", message_id=message_id, code=code, text=text[:300])
        if code == 421 or not client.is_connected:
            raise ClosedAfter(result)
        return result

    async def _send_one(
        self, client: aiosmtplib.SMTP, message: OutgoingMessage, deadline: float
    ) -> SendResult:
        settings = self.settings
        if not message.recipient:
            return Failed(message.message_id, "no e-mail address")
        if not message.recipient.isascii():  # would need SMTPUTF8, which few relays offer
            return Failed(message.message_id, "cannot be sent by e-mail: a non-ASCII address")
        try:
            data = build_message(
                message, settings.from_header, settings.domain, provider=settings.provider
            )
        except ValueError as exc:  # a line break in the address, say
            return Failed(message.message_id, f"cannot be sent by e-mail: {exc}"[:300])
        sender = message.return_path or settings.address
        try:
            async with asyncio.timeout_at(deadline):
                await client.sendmail(sender, [message.recipient], data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            [refused] = exc.recipients
            return self._answered(client, message.message_id, refused.code, refused.message)
        except aiosmtplib.SMTPSenderRefused as exc:
            if exc.code in AUTH_CODES:
                raise self._wants_login(exc) from None
            if exc.code == 503:  # "bad sequence": the session is confused, start afresh
                raise ConnectionLost(f"{exc.code} {exc.message}") from None
            if exc.code in SENDER_REFUSED:
                own = "" if sender == settings.address else BOUNCE_SENDER_HINT
                raise VendorMisconfigured(
                    f"the relay {self.relay.where} refused the sender {sender!r} "
                    f"({exc.code} {exc.message}){own}"
                ) from None
            return self._answered(client, message.message_id, exc.code, exc.message)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code in AUTH_CODES:
                raise self._wants_login(exc) from None
            return self._answered(client, message.message_id, exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError) as exc:  # hung up, timed out (OSError)
            raise ConnectionLost(f"connection lost: {str(exc) or 'timed out'}") from None
        except ValueError as exc:  # an address aiosmtplib will not write: end the envelope
            await _reset(client)
            return Failed(message.message_id, f"cannot be sent by e-mail: {exc}"[:300])
        vendor_id = message_id_header(message.message_id, settings.domain)
        return Accepted(message.message_id, vendor_id, sent=True)  # 250: SMTP says no more

    def _wants_login(self, exc: aiosmtplib.SMTPResponseException) -> VendorMisconfigured:
        return VendorMisconfigured(
            f"the relay {self.relay.where} wants a login ({exc.code} {exc.message}): "
            "set username and password"
        )

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> None:
        """Every callback is refused: SMTP has no receipts, and a message the relay took
        is SENT already."""
        raise ValueError("the smtp vendor takes no receipts")

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        return []

    async def check(self) -> CheckResult:
        """Connect and log in with a connection of its own, then QUIT."""
        where = self.relay.where
        try:
            client = await self.relay.open()
        except VendorMisconfigured as exc:
            return CheckResult(ok=False, detail=str(exc))
        except RelayDown as exc:
            return CheckResult(ok=False, detail=str(exc))
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
        user = self.settings.username
        return CheckResult(ok=True, detail=f"logged in to {where} as {user!r}" if user else where)

    async def close(self) -> None:
        await self.relay.close()
