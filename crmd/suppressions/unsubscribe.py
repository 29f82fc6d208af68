"""Following an unsubscribe link: whom it names, and putting their address on its
tenant's suppression list. The tenant comes from the link's signature, never from the
request; the handlers (the console's ``/u/{token}`` pages) only show the answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.errors import NotFound
from crmd.messages import message_id
from crmd.store.tenant import TenantStore
from crmd.suppressions.entries import Entry, address, find, suppress
from crmd.suppressions.links import LinkTarget, UnsubscribeLinks
from crmd.webhooks.emit import emit
from crmd.webhooks.kinds import Kind

log = structlog.get_logger(__name__)
REASON = "followed the unsubscribe link in a message"


@dataclass(frozen=True)
class Recipient:
    email: str
    already: bool
    """On the list already (unsubscribed before, or suppressed another way)."""


class Unsubscribes:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        links: UnsubscribeLinks,
        redis: Redis | None = None,
        prefix: str = "crmd",
    ) -> None:
        """``redis``: where webhooks' subscriptions are looked up (``customer.unsubscribed``
        is emitted only with it)."""
        self.db = db
        self.links = links
        self.redis = redis
        self.prefix = prefix

    async def recipient(self, token: str) -> Recipient:
        """Whom the link names, and whether they are unsubscribed already. A read only:
        link checkers in mail systems open links, and must not unsubscribe anyone."""
        target = self.links.read(token)
        store = TenantStore(self.db, target.user)
        email = await self._address(store, target)
        return Recipient(email, await find(store, email) is not None)

    async def unsubscribe(self, token: str) -> str:
        """Suppress the link's recipient at once (safe to repeat); their address."""
        target = self.links.read(token)
        store = TenantStore(self.db, target.user)
        email = await self._address(store, target)
        entry = Entry(email, REASON, "unsubscribe", target.campaign, target.customer or None)
        added, _ = await suppress(store, [entry])
        if added:
            log.info("suppression.unsubscribed", user_id=target.user, campaign_id=target.campaign)
            if self.redis is not None:
                data = {
                    "email": email,
                    "customerId": target.customer or None,
                    "campaignId": target.campaign,
                }
                await emit(store, self.redis, Kind.CUSTOMER_UNSUBSCRIBED, data, prefix=self.prefix)
        return email

    async def _address(self, store: TenantStore, target: LinkTarget) -> str:
        """The address the link's message went to: an old link must not unsubscribe
        the address a customer has since moved to. The campaign's log for the customer
        says it; the customer's current address only when there is no log (a link
        made before its log was written)."""
        if target.email:
            email = address(target.email)
        else:
            sent = await store["communication_log"].find_one(
                {"_id": message_id(target.campaign, target.customer)},
                projection={"recipient": 1},
            )
            email = address(str(sent.get("recipient") or "")) if sent else None
            if email is None:
                customer = await store["customers"].find_one(
                    {"_id": target.customer}, projection={"email": 1}
                )
                email = address(str(customer.get("email") or "")) if customer else None
        if email is None:
            raise NotFound(
                "the person this link was sent to is no longer on file, so there is nothing "
                "to unsubscribe: no message will reach them from this list",
                code="unknown_recipient",
            )
        return email
