"""One e-mail of crmd's own (not a customer's message: an invitation), handed to the
default vendor at once, outside any campaign: no log, no receipt expected, no retry."""

from __future__ import annotations

import structlog

from crmd.campaigns.vendors import Vendors, guarded_send
from crmd.plugins.vendor import Accepted, OutgoingMessage, VendorMisconfigured

log = structlog.get_logger(__name__)
BUDGET = 10.0
"""Seconds the vendor has to take it: a person waits for the page."""


async def hand_over(
    vendors: Vendors, message_id: str, to: str, subject: str, text: str
) -> tuple[str, str]:
    """``(vendor, "")`` when the default vendor took the letter, ``("", why)`` when it
    did not, ``("", "")`` when there is no vendor to try."""
    if vendors.default is None:
        return "", ""
    vendor = vendors.get(None)
    letter = OutgoingMessage(message_id, to, "", text, subject=subject)
    try:
        answer = (await guarded_send(vendor, [letter], BUDGET))[0]
    except VendorMisconfigured as exc:
        return "", f"{vendor.name}: {str(exc)[:200]}"
    if isinstance(answer, Accepted):
        log.info("letter.handed_over", message_id=message_id, vendor=vendor.name)
        return vendor.name, ""
    return "", f"{vendor.name}: {getattr(answer, 'reason', '')[:200] or 'not taken'}"
