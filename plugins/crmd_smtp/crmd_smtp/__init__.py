"""crmd's SMTP vendor: campaigns by e-mail, through the mail relay you already have.

Settings, in ``[plugins.smtp]`` (an empty ``host`` turns the plugin off)::

    host = "smtp.example.com"
    from = "Shop <news@shop.example>"
    username = "news@shop.example"
    password = "$env:SMTP_PASSWORD"   # or "$file:${CREDENTIALS_DIRECTORY}/smtp_password"
    port = 0                          # 0: 587 for starttls, 465 for implicit, 25 for none
    tls = "starttls"                  # "implicit" (SMTPS) or "none" (a local relay only)
    rate = 10                         # messages per second, all crmd processes together
    timeout = 10                      # seconds one SMTP command may take
    ca_file = ""                      # PEM certificates to trust (a private CA)
    helo = ""                         # EHLO name; default: the domain of from
    provider = ""                     # "ses", "sendgrid", "postmark", "mailgun": its event ids

Each message is one mail transaction on a connection the process keeps open (and opens
again when the relay drops it). The relay's answer decides the message's fate: 250 is
SENT (the relay has it; SMTP says nothing of delivery after that), a 5xx answer for the
recipient is FAILED with the relay's words, a 4xx answer or a dropped connection is
retried. A refused login or sender stops the campaign in ``error``, naming this plugin.
SENT is recorded with the hand-over itself (``Accepted(..., sent=True)``): one write per
message, nothing left to post at shutdown, and no receipt awaited, so the campaign
completes as soon as every message is handed over. Callbacks to
``/api/v1/deliveryReceipt/smtp`` are refused: SMTP has no receipts.

Every message carries ``Message-ID: <crmd's message id@the from domain>``. With crmd's
bounces listener on (``[bounces] host``), each message is sent with an envelope sender
of its own (``OutgoingMessage.return_path``, ``<local>+<token>@<bounce domain>``) as MAIL
FROM, so that its bounce names it; the From header stays ``from``. SMTP itself is
at-least-once: after a crash, or a batch cut off by its time limit, every message of the
batch in flight may go again, those the relay had already taken included, each with the
same Message-ID, which is how the relay, or a reader, can tell the copy.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from crmd.plugins import PluginContext, PluginSettingsError, hookimpl, is_loopback
from crmd_smtp.settings import Settings
from crmd_smtp.vendor import NAME, SmtpVendor

__all__ = ["NAME", "Settings", "SmtpVendor", "crmd_vendors"]


@hookimpl
def crmd_vendors(context: PluginContext) -> list[SmtpVendor]:
    settings = context.settings(Settings)
    if not settings.host:
        return []  # not configured: offer nothing
    public = urlsplit(context.public_url).hostname or ""
    if _only_here(public) and not is_loopback(settings.host):
        # Every message's unsubscribe link would point at this machine's loopback (or
        # at 0.0.0.0, server.host's "every interface", which is no address to follow).
        raise PluginSettingsError(
            f"server.public_url = {context.public_url!r}: set it to the address your "
            "customers reach crmd at (https://...), for the unsubscribe links in each e-mail"
        )
    return [SmtpVendor(settings, context.log)]


def _only_here(host: str) -> bool:
    try:
        return is_loopback(host) or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False
