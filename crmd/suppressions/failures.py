"""Which delivery failures mean "this address will never work": those put the address
on the suppression list, so the next campaign does not try it again (mailbox providers
count repeated sends to dead addresses against the sender).

A hard failure is a permanent refusal of the address itself: an enhanced status code
5.1.1, 5.1.2, 5.1.3, 5.1.6 or 5.1.10 (no such mailbox, no such domain, bad syntax,
moved, no mail domain), 5.2.1 (mailbox disabled), or 5.4.1 saying the recipient address
was rejected (Microsoft 365's answer for an unknown recipient); without an enhanced
code, a 5xx reply with words like "no such user" or "user unknown" ("recipient address
rejected" alone is not: Postfix says it for every recipient restriction). A bare 550,
551 or 553 is not enough: relays answer "550 relay not permitted" or "553 relaying
denied" for every recipient when they are misconfigured. A permanent refusal for another reason
(5.7.1 policy, 5.2.2 mailbox full, 5.1.8 a bad sender, content, spam or blocklist
answers) is not one either: the address may work for another message, and suppressing
it would lose a customer.
"""

from __future__ import annotations

import re

import structlog

from crmd.suppressions.entries import Entry

log = structlog.get_logger(__name__)

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY = re.compile(r"^\D{0,20}?\b([2-5][0-9]{2})\b")
_NO_SUCH = re.compile(
    r"no such (user|mailbox|recipient|address|domain)|user unknown|unknown (user|recipient"
    r"|mailbox|address)|(mailbox|user|recipient|address|account) (not found|does not exist"
    r"|doesn't exist|is disabled|disabled)|mailbox unavailable"
    r"|user not local|invalid (recipient|mailbox)|bad destination|undeliverable address"
    r"|domain not found",
    re.IGNORECASE,
)
_POLICY = re.compile(
    r"spam|policy|block|blacklist|reputation|rate limit|too many|dmarc|spf|dkim|quota|full"
    r"|relay|content|message refused|not permitted|authenticat",
    re.IGNORECASE,
)
DEAD_MAILBOX = frozenset({("1", "1"), ("1", "2"), ("1", "3"), ("1", "6"), ("1", "10"), ("2", "1")})
"""Enhanced status codes (5.x.y as (x, y)) that say the recipient's address is dead."""
MAX_SCANNED = 500
ALIKE = 3
"""A batch of at least this many messages, every one refused with the same words, is
refused for a reason of the relay's or the sender's: none of its addresses is taken as
dead. The words are compared with the addresses in them left out: a relay that takes
the domain for its own answers "<x@shop.example>: User unknown" for every x."""
_ADDRESS = re.compile(r"<?[^\s<>@\"']+@[^\s<>\"']+>?")


def hard_failure(reason: str) -> bool:
    """Whether a vendor's reason for a failed message says the address is dead."""
    text = reason[:MAX_SCANNED]
    enhanced = _ENHANCED.search(text)
    if enhanced:
        kind, subject, detail = enhanced.groups()
        if kind != "5":
            return False
        if (subject, detail) == ("4", "1"):
            return bool(re.search(r"recipient address rejected", text, re.IGNORECASE))
        return (subject, detail) in DEAD_MAILBOX
    if _POLICY.search(text):
        return False
    reply = _REPLY.match(text)
    if reply and reply[1][0] != "5":
        return False
    return bool(_NO_SUCH.search(text))


def dead_in(batch: int, refused: list[Entry]) -> list[Entry]:
    """The addresses of a batch of ``batch`` messages to suppress, of those ``refused``
    for good: none when every message of a batch of ``ALIKE`` or more was refused with
    the same words (a relay refusing everyone, not everyone's address being dead)."""
    alike = {_ADDRESS.sub("<>", e.reason) for e in refused}
    if batch >= ALIKE and len(refused) == batch and len(alike) == 1:
        log.warning(
            "suppressions.refused_alike",
            messages=batch,
            reason=refused[0].reason[:200],
            note="none suppressed: the same refusal for a whole batch is the relay's",
        )
        return []
    return refused
