"""The bounces actor: an SMTP listener (aiosmtpd's protocol, served by this event loop)
for the bounces and complaints mailed back to the envelope senders crmd sends with."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from crmd.bounces.inbox import NOT_OURS, Inbox
from crmd.runtime.actor import Actor, Health

SESSION_TIMEOUT = 60.0
"""Seconds a client may sit idle between commands before it is hung up on."""
MAX_SESSIONS = 100
"""Connections served at once; more are told 421 (busy, come back later) and closed."""
MAX_SESSIONS_PER_PEER = 10
"""Connections served at once from one IP address, so that one host cannot hold the
listener from every other; more from it are told 421 and closed."""
SESSION_DEADLINE = 600.0
"""Seconds one connection may last in all, however active (a byte a minute is not a
session); then it is told 421 and closed."""
DATA_DEADLINE = 120.0
"""Seconds a client has to send one mail's content after DATA; then it is told 421 and
closed."""
MAX_RECIPIENTS = 50
"""Recipients of one mail (a bounce has one); more are told 452, as RFC 5321 says."""
TOO_MANY_RECIPIENTS = "452 4.5.3 too many recipients"
BUSY = b"421 4.3.2 too many connections, try again later\r\n"
PEER_BUSY = b"421 4.3.2 too many connections from your address, try again later\r\n"
TOO_LONG = b"421 4.4.2 session too long, closing\r\n"


def turned_away(peers: list[str], peer: str) -> bytes | None:
    """The answer to a new connection from ``peer`` while ``peers`` (one entry a session)
    are served, or None to serve it."""
    if len(peers) >= MAX_SESSIONS:
        return BUSY
    if peers.count(peer) >= MAX_SESSIONS_PER_PEER:
        return PEER_BUSY
    return None


class Handler:
    """aiosmtpd's handler hooks, onto the inbox."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if not self.inbox.accepts(address):
            return NOT_OURS
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return TOO_MANY_RECIPIENTS
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        return await self.inbox.receive(raw, list(envelope.rcpt_tos))


class Listener(SMTP):
    """One SMTP session. aiosmtpd answers a mail over ``data_size_limit`` with 552 (after
    reading and discarding it) without a hook of its own: the answer is counted here."""

    def __init__(self, inbox: Inbox, sessions: set[Listener], **kwargs: Any) -> None:
        super().__init__(Handler(inbox), **kwargs)
        self.inbox = inbox
        self.sessions = sessions
        self.peer = ""
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        peername = transport.get_extra_info("peername")
        self.peer = str(peername[0]) if peername else ""
        answer = turned_away([session.peer for session in self.sessions], self.peer)
        if answer is not None:
            transport.write(answer)
            transport.close()
            return
        self.sessions.add(self)
        super().connection_made(transport)
        self.deadline = self.loop.call_later(SESSION_DEADLINE, self.hang_up, transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self not in self.sessions:
            return  # turned away at connection_made: aiosmtpd never started on it
        self.sessions.discard(self)
        if self.deadline is not None:
            self.deadline.cancel()
        super().connection_lost(error)

    def hang_up(self, transport: asyncio.WriteTransport) -> None:
        """Past a deadline: said so, and closed (aiosmtpd's session ends on the loss)."""
        if not transport.is_closing():
            transport.write(TOO_LONG)
            transport.close()

    async def smtp_DATA(self, arg: str) -> None:
        transport = self.transport
        assert isinstance(transport, asyncio.WriteTransport)
        deadline = self.loop.call_later(DATA_DEADLINE, self.hang_up, transport)
        try:
            await super().smtp_DATA(arg)
        finally:
            deadline.cancel()

    async def push(self, status: Any) -> None:
        if str(status).startswith("552"):
            self.inbox.too_large()
        await super().push(status)


class BouncesActor(Actor):
    def __init__(self, inbox: Inbox, host: str, port: int, max_bytes: int) -> None:
        super().__init__("bounces")
        # aiosmtpd logs every session's peer and addresses at INFO; crmd logs what each
        # mail came to (``bounce.queued``, ``bounce.dropped``) instead.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.inbox = inbox
        self.host = host
        self.port = port
        self.max_bytes = max_bytes
        self.sessions: set[Listener] = set()

    def session(self) -> Listener:
        return Listener(
            self.inbox,
            self.sessions,
            data_size_limit=self.max_bytes,
            hostname=self.inbox.return_paths.domain,
            ident="crmd bounces",
            timeout=SESSION_TIMEOUT,
            loop=asyncio.get_running_loop(),
        )

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self.session, self.host, self.port, reuse_address=True)
        self.detail = f"listening on {self.host}:{self.port}"
        self.health = Health.OK
        try:
            await self.stopping.wait()
        finally:
            server.close()
            for session in list(self.sessions):  # a session in the middle of a mail is cut
                if session.transport is not None:
                    session.transport.close()
            await server.wait_closed()
