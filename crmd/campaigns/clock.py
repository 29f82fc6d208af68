"""The clock actor: what happens because time passed, not because a message came.

Every few seconds: a scheduled campaign whose time has come is queued for planning;
receipts that arrived before crmd knew their message are matched again; a sent
campaign whose receipt window has closed is completed, its still-PENDING messages marked
UNKNOWN (a late receipt still lands: UNKNOWN ranks below every real status); and an
upload whose receiving process died is finished.
Each change is a conditional update, so several crmd processes can run clocks at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog

from crmd.campaigns import jobs, stats
from crmd.ingest.publish import recover_interrupted
from crmd.receipts.apply import rematch_unknown
from crmd.receipts.status import UNKNOWN
from crmd.runtime.actor import Actor, Health
from crmd.runtime.context import Runtime
from crmd.store.tenant import TenantStore

log = structlog.get_logger(__name__)


async def start_due_campaigns(runtime: Runtime, now: datetime) -> int:
    started = 0
    async for campaign in runtime.db.campaigns.find(
        {"status": "scheduled", "scheduledAt": {"$lte": now}}, projection={"userId": 1}
    ):
        store = TenantStore(runtime.db, campaign["userId"])
        moved = await store["campaigns"].update_one(
            {"_id": campaign["_id"], "status": "scheduled"},
            {"$set": {"status": "queued", "updatedAt": now}},
        )
        if moved.modified_count:
            await jobs.publish(
                runtime.redis,
                runtime.streams.dispatch,
                [jobs.DispatchJob("plan", str(campaign["_id"]), store.user_id)],
            )
            started += 1
    return started


async def close_receipt_windows(runtime: Runtime, now: datetime) -> int:
    window = timedelta(seconds=runtime.config.campaigns.receipt_window_seconds)
    closed = 0
    async for campaign in runtime.db.campaigns.find(
        {"status": "sent", "sentAt": {"$lte": now - window}}, projection={"userId": 1}
    ):
        store = TenantStore(runtime.db, campaign["userId"])
        still_sent = await store["campaigns"].count_documents(
            {"_id": campaign["_id"], "status": "sent"}
        )
        if not still_sent:
            continue
        await store["communication_log"].update_many(
            # Only messages the vendor took: one reset by retry-failed just now is not
            # late, it is about to be sent.
            {
                "campaignId": str(campaign["_id"]),
                "status": "PENDING",
                "vendorMessageId": {"$ne": None},
            },
            {"$set": {"status": UNKNOWN, "updatedAt": now}},
        )
        await stats.refresh(store, str(campaign["_id"]))
        closed += 1
        log.info("campaign.receipt_window_closed", campaign_id=str(campaign["_id"]))
    return closed


class ClockActor(Actor):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__("clock")
        self.runtime = runtime

    async def run(self) -> None:
        self.health = Health.OK
        interval = self.runtime.config.campaigns.clock_interval_seconds
        while not await self.sleep(interval):
            now = datetime.now(UTC)
            await start_due_campaigns(self.runtime, now)
            await rematch_unknown(self.runtime.db, self.runtime.metrics, now)
            await close_receipt_windows(self.runtime, now)
            await recover_interrupted(
                self.runtime.db, self.runtime.redis, self.runtime.streams.ingest, now
            )
