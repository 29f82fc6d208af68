"""A real SMTP relay for the tests (aiosmtpd, on a free port of this event loop) that
keeps what it receives and misbehaves on demand: refuses a recipient, hangs up in the
middle of a message, wants a login and refuses a wrong password."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import ssl
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER, PASSWORD = "shop", "s3cret-relay-password"


@dataclass
class LocalRelay:
    port: int = 0
    refuse: dict[str, str] = field(default_factory=dict)
    """Recipient → the answer to its RCPT (e.g. ``"550 5.1.1 no such user"``)."""
    mail_answers: list[str] = field(default_factory=list)
    """Answers to the coming MAIL FROM commands, one each, in order; then 250."""
    hang_up_after: int | None = None
    """Hang up, without answering, on the message after this many have arrived."""
    stall: dict[str, float] = field(default_factory=dict)
    """Recipient → seconds the relay sits on its message before answering."""
    login: tuple[str, str] | None = None
    """Wanted login; None: no AUTH at all."""
    received: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    """Each received message's bytes as they came over the wire (after DATA)."""
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    sessions: int = 0
    hung_up: int = 0
    open_connections: list[SMTP] = field(default_factory=list)

    def hang_up_idle(self) -> None:
        """Close every connection, as a relay does to clients idle too long."""
        for connection in self.open_connections:
            if connection.transport is not None:
                connection.transport.close()
        self.open_connections.clear()

    def by_recipient(self) -> dict[str, list[EmailMessage]]:
        found: dict[str, list[EmailMessage]] = {}
        for message in self.received:
            found.setdefault(str(message["To"]), []).append(message)
        return found

    # aiosmtpd's handler hooks

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        self.sessions += 1
        self.open_connections.append(server)
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.mail_answers:
            answer = self.mail_answers.pop(0)
            if not answer.startswith("250"):
                return answer
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.hang_up_after is not None and len(self.received) >= self.hang_up_after:
            self.hang_up_after = None
            self.hung_up += 1
            assert server.transport is not None
            server.transport.abort()
            return "421 gone"
        for recipient in envelope.rcpt_tos:
            await asyncio.sleep(self.stall.get(recipient, 0.0))
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(parsed)
        self.raw.append(envelope.content)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 queued"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.login == (
            data.login.decode(),
            data.password.decode(),
        )
        return AuthResult(success=ok, handled=False)


async def start_relay(relay: LocalRelay, tls: ssl.SSLContext | None = None) -> asyncio.Server:
    """Serve ``relay`` on 127.0.0.1 (its ``port``, or a free one it is then given);
    with ``tls``, STARTTLS is offered and required."""
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        with warnings.catch_warnings():  # "AUTH without TLS": on loopback, for the test
            warnings.simplefilter("ignore", UserWarning)
            return SMTP(
                relay,
                hostname="relay.test",
                ident="test relay",
                authenticator=relay.authenticate if relay.login else None,
                auth_required=relay.login is not None,
                auth_require_tls=False,
                tls_context=tls,
                require_starttls=tls is not None,
                loop=loop,
            )

    server = await loop.create_server(protocol, "127.0.0.1", relay.port)
    relay.port = server.sockets[0].getsockname()[1]
    return server


def self_signed_certificate(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 and the PEM file of its certificate."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "relay.pem", folder / "relay.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file
