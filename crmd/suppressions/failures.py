"""Which delivery failures mean "this address will never work": those put the address
on the suppression list, so the next campaign does not try it again (mailbox providers
count repeated sends to dead addresses against the sender).

A hard failure is a permanent refusal of the address itself: an enhanced status code
5.1.x (bad mailbox, bad domain, bad syntax) or 5.2.1 (mailbox disabled); without one, a
550, 551 or 553 reply, or words like "no such user". A permanent refusal for another
reason (5.7.1 policy, 5.2.2 mailbox full, spam or blocklist answers) is not: the
address may work for another message, and suppressing it would lose a customer.
"""

from __future__ import annotations

import re

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY = re.compile(r"^\D{0,20}?\b([2-5][0-9]{2})\b")
_NO_SUCH = re.compile(
    r"no such (user|mailbox|recipient|address|domain)|user unknown|unknown (user|recipient"
    r"|mailbox|address)|(mailbox|user|recipient|address|account) (not found|does not exist"
    r"|doesn't exist|is disabled|disabled)|recipient (address )?rejected|invalid (recipient"
    r"|mailbox)|bad destination|undeliverable address|domain not found",
    re.IGNORECASE,
)
_POLICY = re.compile(
    r"spam|policy|block|blacklist|reputation|rate limit|too many|dmarc|spf|dkim|quota|full",
    re.IGNORECASE,
)
MAX_SCANNED = 500


def hard_failure(reason: str) -> bool:
    """Whether a vendor's reason for a failed message says the address is dead."""
    text = reason[:MAX_SCANNED]
    enhanced = _ENHANCED.search(text)
    if enhanced:
        kind, subject, detail = enhanced.groups()
        return kind == "5" and (subject == "1" or (subject, detail) == ("2", "1"))
    if _POLICY.search(text):
        return False
    reply = _REPLY.match(text)
    if reply:
        code = reply[1]
        return code[0] == "5" and (code in ("550", "551", "553") or bool(_NO_SUCH.search(text)))
    return bool(_NO_SUCH.search(text))
