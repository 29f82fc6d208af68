"""The pure half of the SMTP vendor: a message's bytes from crmd's OutgoingMessage, and
what an SMTP answer means for it. Nothing here touches a socket."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from crmd.plugins import Failed, OutgoingMessage, Retry, SendResult

_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/?^_`{|}~.-]")
RETRY_SECONDS = 5.0
"""The first wait before a message a relay deferred (4xx) is tried again; crmd doubles
it at each attempt."""


def message_id_header(message_id: str, domain: str) -> str:
    """``<crmd's message id@domain>``: the id as it is when it is made of the characters
    a Message-ID allows (crmd's are), any other character written ``=XX``. A message a
    relay received twice (a re-send after a crash) carries the same Message-ID."""
    left = _NOT_ATEXT.sub(lambda m: "".join(f"={b:02X}" for b in m.group().encode()), message_id)
    return f"<{left}@{domain}>"


def build_message(
    message: OutgoingMessage, from_header: str, domain: str, at: datetime | None = None
) -> bytes:
    """The message as sent: text/plain, or multipart/alternative with text/html when the
    message has an HTML body; the subject; crmd's Message-ID; and, with an unsubscribe
    link, the RFC 8058 one-click headers. ValueError for a value that cannot be a header
    (a line break in the address, for one)."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = from_header
    mail["To"] = message.recipient
    if message.subject:
        mail["Subject"] = message.subject
    mail["Date"] = format_datetime(at or datetime.now(UTC))
    mail["Message-ID"] = message_id_header(message.message_id, domain)
    mail.set_content(message.text, cte=_transfer_encoding(message.text))
    if message.html:
        mail.add_alternative(message.html, subtype="html", cte=_transfer_encoding(message.html))
    return one_click_headers(message.unsubscribe_url) + mail.as_bytes()


_URL = re.compile(r"[!#-;=?-~]+")
"""Printable ASCII without space, ``"``, ``<`` or ``>``: what a link between ``<>`` may hold."""


def one_click_headers(url: str) -> bytes:
    """RFC 8058's two headers, each on one line as it is. The email package would fold a
    link longer than 78 characters, and having no space to fold at, it writes it as an
    RFC 2047 encoded-word, which no mailbox provider reads as a URL. (A header line may
    be 998 characters long.)"""
    if not url:
        return b""
    if not _URL.fullmatch(url) or len(url) > 900:
        raise ValueError("the unsubscribe link is not one a header can carry")
    return (
        f"List-Unsubscribe: <{url}>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    ).encode("ascii")


def _transfer_encoding(body: str) -> str:
    # Quoted-printable whenever a line is not plain short ASCII: a relay without
    # 8BITMIME then still takes it unchanged.
    plain = body.isascii() and all(len(line) <= 900 for line in body.splitlines())
    return "7bit" if plain else "quoted-printable"


def answer_for(message_id: str, code: int, text: str) -> SendResult:
    """A relay's refusal as crmd's result: 5xx refuses this message for good (FAILED,
    with the relay's words), 4xx asks to try again later."""
    reason = f"{code} {text}".strip()[:300]
    if 500 <= code < 600:
        return Failed(message_id, reason)
    return Retry(message_id, RETRY_SECONDS, reason)
