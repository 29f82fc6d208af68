"""crmd's receipt sources for mail providers' event webhooks: Amazon SES (through SNS),
SendGrid, Postmark and Mailgun, each its own plugin (``[plugins.ses]``,
``[plugins.sendgrid]``, ``[plugins.postmark]``, ``[plugins.mailgun]``), each off until its
table is filled in, each checking its provider's own signature or credential.

They report on mail crmd sent through the smtp vendor by way of the provider's SMTP
relay: the provider posts its events to ``/api/v1/deliveryReceipt/<name>``, and each event
names crmd's message by the id the smtp vendor put in the message's headers
(``X-Crmd-Message-Id``, the provider's own metadata header, or the Message-ID). An event
that names no message of crmd's is dropped and counted; a forged, stale or replayed one
is refused with 401. Each module's docstring lists its settings.
"""
