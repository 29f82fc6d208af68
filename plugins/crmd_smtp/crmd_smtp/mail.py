"""The pure half of the SMTP vendor: a message's bytes from crmd's OutgoingMessage, and
what an SMTP answer means for it. Nothing here touches a socket."""

from __future__ import annotations

import json
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


PROVIDERS = ("", "ses", "sendgrid", "postmark", "mailgun")
"""The relays whose event webhooks crmd reads (``crmd_providers``): "" for any other."""
METADATA_KEY = "crmd_message_id"


def provider_headers(message_id: str, provider: str = "") -> list[tuple[str, str]]:
    """The headers that carry crmd's message id to where ``provider``'s events echo it:
    ``X-Crmd-Message-Id`` always (SES returns it among the original headers), and
    SendGrid's unique argument (``X-SMTPAPI``), Mailgun's variable
    (``X-Mailgun-Variables``) or Postmark's metadata (``X-PM-Metadata-crmd_message_id``).
    ValueError for a provider crmd does not know."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS[1:])}")
    headers = [("X-Crmd-Message-Id", message_id)]
    # JSON with its spaces: the email package folds a long header at a space, and a
    # header it cannot fold it writes as an encoded-word, which no provider reads.
    if provider == "sendgrid":
        headers.append(("X-SMTPAPI", json.dumps({"unique_args": {METADATA_KEY: message_id}})))
    elif provider == "mailgun":
        headers.append(("X-Mailgun-Variables", json.dumps({METADATA_KEY: message_id})))
    elif provider == "postmark":
        headers.append((f"X-PM-Metadata-{METADATA_KEY}", message_id))
    return headers


def build_message(
    message: OutgoingMessage,
    from_header: str,
    domain: str,
    at: datetime | None = None,
    *,
    provider: str = "",
) -> bytes:
    """The message as sent: text/plain, or multipart/alternative with text/html when the
    message has an HTML body; the subject; crmd's Message-ID and the headers that carry
    its id to ``provider``'s event webhook (``provider_headers``); and, with an
    unsubscribe link, the RFC 8058 one-click headers. ValueError for a value that cannot
    be a header (a line break in the address, for one)."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = from_header
    mail["To"] = message.recipient
    if message.subject:
        mail["Subject"] = message.subject
    mail["Date"] = format_datetime(at or datetime.now(UTC))
    mail["Message-ID"] = message_id_header(message.message_id, domain)
    for name, value in provider_headers(message.message_id, provider):
        mail[name] = value
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
