"""Which group of a campaign each recipient falls in: held out or messaged, and for an
A/B test, which variant and whether in the test share or the rest.

Each is a keyed hash of the customer, under the campaign's own random ``seed`` (made at
creation, never shown): random across customers, unpredictable from outside, and the
same every time it is asked. A plan repeated after a crash, or the rest planned after
the test, puts everyone where they were; nobody can be in the test share and the rest,
so nobody gets two variants (a log's id is its campaign and customer besides). The three
draws are independent, so the holdout is the same share of every variant, of the test
share and of the rest. Pure.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import NamedTuple

from crmd.store.documents import Campaign

SCALE = float(2**64)


def new_seed() -> str:
    return secrets.token_hex(16)


def draw(seed: str, what: str, customer: str) -> float:
    """A number in [0, 1) fixed by the seed, the draw's name and the customer."""
    digest = hmac.new(seed.encode(), f"{what}\x00{customer}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / SCALE


class Group(NamedTuple):
    held: bool
    """In the holdout: logged HELD_OUT, never sent."""
    variant: int | None
    """The A/B variant's index (None: the campaign has no variants)."""
    rest: bool
    """Waits for an A/B test's winner (not in the test share)."""


def group_of(campaign: Campaign, customer: str) -> Group:
    seed = campaign.seed
    held = campaign.holdout > 0 and draw(seed, "holdout", customer) * 100 < campaign.holdout
    count = len(campaign.variants)
    if not count:
        return Group(held, None, False)
    test = campaign.abTest
    rest = (
        test is not None
        and test.mode == "winner"
        and draw(seed, "test", customer) * 100 >= test.testPercent
    )
    variant = min(count - 1, int(draw(seed, "variant", customer) * count))
    return Group(held, variant, rest)


def in_phase(campaign: Campaign, group: Group) -> bool:
    """Whether this planning pass plans the recipient: before an A/B test's winner is
    picked, the test share; after, the rest."""
    return group.rest == (campaign.winner is not None)


def variant_sent(campaign: Campaign, group: Group) -> int | None:
    """The variant the recipient is sent: the winner for the rest."""
    if group.rest and campaign.winner is not None:
        return campaign.winner.variant
    return group.variant
