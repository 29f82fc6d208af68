"""crmd's webhook vendor: each batch POSTed as signed JSON to a gateway of yours (an
SMS or push service, or a small adapter in front of one).

Settings, in ``[plugins.webhook]`` (an empty ``url`` turns the plugin off)::

    url = "https://gateway.example/crmd"
    secret = "$env:WEBHOOK_SECRET"   # whsec_<base64>, e.g. "whsec_" + base64 of 32 random bytes
    rate = 50                        # messages per second, all crmd processes together
    timeout = 15                     # seconds the gateway has to answer a batch

Requests and receipts are signed in the Standard Webhooks style
(https://www.standardwebhooks.com): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, with the same
secret both ways. The gateway posts its receipts to ``/api/v1/deliveryReceipt/webhook``;
a receipt with a missing, wrong or stale (over five minutes) signature is refused.
The bodies are described in ``crmd_webhook.contract``.
"""

from __future__ import annotations

from crmd.plugins import PluginContext, hookimpl
from crmd_webhook.settings import Settings
from crmd_webhook.vendor import NAME, WebhookVendor

__all__ = ["NAME", "Settings", "WebhookVendor", "crmd_vendors"]


@hookimpl
def crmd_vendors(context: PluginContext) -> list[WebhookVendor]:
    settings = context.settings(Settings)
    if not settings.url:
        return []  # not configured: offer nothing
    return [WebhookVendor(settings, context.http, context.receipt_url)]
