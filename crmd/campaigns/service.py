"""What an operator can do to campaigns: create, send, pause, resume, cancel, retry the
failed, test. Each status change is a lifecycle move; the handlers only parse and answer."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import redis.exceptions
import structlog
from bson import ObjectId
from redis.asyncio import Redis

from crmd.campaigns import chunks, compose, effect, engagement, groups, jobs, stats
from crmd.campaigns.dispatch import RESENT, mark_sent_if_done
from crmd.campaigns.experiments import InvalidTemplate as InvalidTemplate
from crmd.campaigns.experiments import check_test_share, design_of
from crmd.campaigns.lifecycle import (
    Action,
    Status,
    initial_status,
    operator_actions,
    resume_action,
    send_action,
)
from crmd.campaigns.schema import CampaignBody
from crmd.campaigns.transitions import move_or_refuse
from crmd.campaigns.vendors import Vendors, guarded_send
from crmd.emails import InvalidEmail, normalise_email
from crmd.errors import Unprocessable
from crmd.messages import MessageStatus, test_send_id
from crmd.plugins.vendor import Accepted, Failed, SendResult, VendorMisconfigured
from crmd.segments.counting import AudienceCounter
from crmd.segments.query import rule_now
from crmd.segments.service import segment_by_id
from crmd.store import documents
from crmd.store.documents import Campaign, Doc
from crmd.store.limits import DATE_RANGE, to_utc
from crmd.store.tenant import TenantStore, object_id
from crmd.store.writes import insert_tallied
from crmd.suppressions.links import UnsubscribeLinks
from crmd.telemetry.logs import describe_error

log = structlog.get_logger(__name__)


async def campaign_by_id(store: TenantStore, campaign_id: str) -> Campaign:
    """The user's campaign ``campaign_id`` (404 when it is not theirs, or malformed)."""
    return documents.decode(await store["campaigns"].get(campaign_id, "campaign"), Campaign)


class Campaigns:
    def __init__(
        self,
        redis: Redis,
        stream: str,
        vendors: Vendors,
        counter: AudienceCounter,
        links: UnsubscribeLinks | None = None,
        tracking: tuple[bool, bool] = (True, False),
        experiment: tuple[float, int] = (0.0, 7),
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.vendors = vendors
        self.counter = counter
        self.links = links
        self.tracking = tracking
        """Whether a new campaign tracks (clicks, opens) when its body does not say."""
        self.experiment = experiment
        """A new campaign's holdout percent and attribution days when it does not say."""

    async def create(self, store: TenantStore, body: CampaignBody) -> Campaign:
        clicks = self.tracking[0] if body.trackClicks is None else body.trackClicks
        opens = self.tracking[1] if body.trackOpens is None else body.trackOpens
        if not body.variants:  # before the audience is counted: a typo answers at once
            design_of(body, self.experiment, clicks, 0)
        rule = body.rule
        if body.segmentId:
            rule = (await segment_by_id(store, body.segmentId)).rule
        if not rule:
            raise Unprocessable(
                "a campaign needs a rule or a segmentId",
                code="missing_audience",
                details={"field": "rule"},
            )
        now = rule_now()
        # How many it would reach now; planning counts the recipients it keeps.
        audience = (await self.counter.count_all(store, rule)).size
        design = design_of(body, self.experiment, clicks, audience)
        first = design.variants[0] if design.variants else body
        texts = [(v.message, v.html) for v in design.variants] or [(body.message, body.html)]
        vendor = self.vendors.get(body.vendor).name
        scheduled_at = None
        if body.scheduledAt is not None:  # a time without a zone is UTC
            scheduled_at = to_utc(body.scheduledAt)
            if scheduled_at is None:
                raise Unprocessable(
                    f"scheduledAt must lie between {DATE_RANGE}",
                    code="invalid_body",
                    details={"field": "$.scheduledAt"},
                )
        status = initial_status(body.draft, scheduled_at, datetime.now(UTC))
        new = documents.NewCampaign(
            id=ObjectId(),
            n=await store.reserve("campaigns", 1),
            name=body.name,
            message=first.message,
            subject=first.subject,
            html=first.html,
            intent=body.intent,
            rule=rule,
            segmentId=body.segmentId,
            vendor=vendor,
            ruleNow=now,
            status=status.value,
            audienceSize=audience,
            stats={**dict.fromkeys(stats.GROUPS, 0), "pending": audience},
            byStatus={},
            scheduledAt=scheduled_at,
            createdAt=now,
            updatedAt=now,
            trackClicks=clicks,
            trackOpens=opens,
            links=compose.links_of(*texts) if clicks else [],
            holdout=design.holdout,
            attributionDays=design.attribution_days,
            seed=groups.new_seed(),
            variants=design.variants,
            abTest=design.ab_test,
        )
        doc = documents.encode(new)
        await insert_tallied(store, "campaigns", [doc])
        log.info(
            "campaign.created", campaign_id=str(new.id), status=status.value, audience=audience
        )
        if status is Status.QUEUED:
            await self._plan(store, new.id)
        return documents.decode(doc, Campaign)

    async def send(self, store: TenantStore, campaign_id: str) -> Campaign:
        """A draft goes out: now, or at its scheduledAt."""
        doc = await campaign_by_id(store, campaign_id)
        at = doc.scheduledAt
        action = send_action(to_utc(at) if at else None, datetime.now(UTC))
        if doc.abTest is not None and doc.abTest.mode == "winner":  # its audience now
            audience = (await self.counter.count_all(store, doc.rule)).size
            check_test_share(doc.abTest, doc.holdout, len(doc.variants), audience)
        moved = await move_or_refuse(store["campaigns"], doc.id, action)
        if action is Action.SEND:
            await self._plan(store, doc.id)
        return moved

    async def pause(self, store: TenantStore, campaign_id: str) -> Campaign:
        return await move_or_refuse(store["campaigns"], object_id(campaign_id), Action.PAUSE)

    async def resume(self, store: TenantStore, campaign_id: str) -> Campaign:
        """Paused before it was planned: plan it now. After: queue what is still unsent."""
        doc = await campaign_by_id(store, campaign_id)
        action = resume_action(planned=doc.plannedAt is not None)
        moved = await move_or_refuse(store["campaigns"], doc.id, action)
        if action is Action.RESUME:
            await self._requeue_unsent(store, str(doc.id))
        else:
            # The chunks planned before the pause had their jobs dropped while paused;
            # planning goes on from where it stopped.
            await self._queue_open_chunks(store, str(doc.id))
            await self._plan(store, doc.id)
        return moved

    async def cancel(self, store: TenantStore, campaign_id: str) -> Campaign:
        """Planning and sending stop between batches, and every message not yet handed
        to the vendor becomes CANCELLED: written by the dispatch actor, a chunk at a
        time (a large audience's would keep this request waiting for minutes)."""
        moved = await move_or_refuse(store["campaigns"], object_id(campaign_id), Action.CANCEL)
        job = jobs.DispatchJob("cancel", str(moved.id), store.user_id)
        await jobs.publish(self.redis, self.stream, [job])
        return moved

    async def retry_failed(self, store: TenantStore, campaign_id: str) -> tuple[Campaign, int, int]:
        """Send again to FAILED recipients only; returns the campaign, how many were
        reset and how many queued."""
        campaign = str(object_id(campaign_id))
        # Back to sending: it is not completed any more (it will be again, later).
        moved = await move_or_refuse(
            store["campaigns"], object_id(campaign_id), Action.RETRY_FAILED, completedAt=None
        )
        now = datetime.now(UTC)
        reset_fields = {
            "$set": {
                "status": MessageStatus.PENDING,
                "rank": 0,
                "vendorMessageId": None,
                "attempts": 0,
                "gaveUp": False,
                "updatedAt": now,
            },
            "$unset": {"reason": "", "times": ""},
        }
        logs = store["communication_log"]
        # Before the logs: whoever checks whether the campaign is sent counts them.
        # The AI summary told of the failures retried now: it is written again on ask.
        await store["campaigns"].update_one(
            {"_id": object_id(campaign_id)}, {**RESENT, "$unset": {"summary": ""}}
        )
        # Refused by the vendor: a new round, so a new message id. Given up on after
        # retries: the vendor may have taken it, so the same id again (it dedupes on it).
        refused = await logs.update_many(
            {"campaignId": campaign, "status": MessageStatus.FAILED, "gaveUp": {"$ne": True}},
            {**reset_fields, "$inc": {"round": 1}},
        )
        gave_up = await logs.update_many(
            {"campaignId": campaign, "status": MessageStatus.FAILED, "gaveUp": True}, reset_fields
        )
        queued = await self._requeue_unsent(store, campaign)
        moved = msgspec.structs.replace(moved, stats=await stats.refresh(store, campaign))
        return moved, refused.modified_count + gave_up.modified_count, queued

    async def test_send(
        self, store: TenantStore, campaign_id: str, email: str, variant: int = 0
    ) -> Doc:
        """One rendered message (of the A/B ``variant``) to one address; no log, no
        stats. An address that is not a customer's gets the placeholders' defaults."""
        doc = await campaign_by_id(store, campaign_id)
        try:
            email = normalise_email(email)
        except InvalidEmail as exc:
            raise Unprocessable(
                f"email {exc}", details={"field": "$.email"}, code="invalid_email"
            ) from None
        customer = await store["customers"].find_one({"email": email}) or {"email": email}
        every = compose.templates_of(doc)
        if variant >= len(every):
            raise Unprocessable(
                f"the campaign has no variant {variant}", details={"field": "$.variant"}
            )
        templates = every[variant]
        url = ""
        if self.links is not None:  # to a customer: their link; else the address's
            url = self.links.url(
                store.user_id, str(doc.id), customer=customer.get("_id", ""), email=email
            )
        text = compose.text_for(templates, customer, url)
        vendor = self.vendors.get(doc.vendor)
        recipient = {"recipient": email, "phone": customer.get("phone", ""), "message": text}
        message = compose.outgoing(
            test_send_id(), {**recipient, "values": customer}, templates, url
        )
        result: SendResult
        try:
            [result] = await guarded_send(vendor, [message])
        except VendorMisconfigured as exc:  # the operator sees what to fix
            result = Failed(message.message_id, f"the {vendor.name} vendor cannot send: {exc}")
        return {
            "message": text,
            "vendor": vendor.name,
            "accepted": isinstance(result, Accepted),
            "vendorMessageId": getattr(result, "vendor_message_id", None),
            "reason": getattr(result, "reason", None),
        }

    async def _plan(self, store: TenantStore, campaign_id: ObjectId) -> None:
        """Queue the campaign's plan job. The campaign is already stored as queued: when
        Redis refuses the job, the clock's ``recover_stranded`` queues it later, so the
        caller is told it is queued (a 503 here made clients send it twice)."""
        job = jobs.DispatchJob("plan", str(campaign_id), store.user_id)
        try:
            await jobs.publish(self.redis, self.stream, [job])
        except redis.exceptions.RedisError as exc:
            log.warning(
                "campaign.plan_deferred", campaign_id=str(campaign_id), error=describe_error(exc)
            )

    async def _requeue_unsent(self, store: TenantStore, campaign: str) -> int:
        """Queue send jobs for every unsent message: the plan's open chunks, and the
        logs set to be sent again, streamed chunk by chunk. With nothing unsent, the
        campaign is marked sent rather than left waiting. Returns how many messages
        were queued (a chunk counts whole: some of it may be handed over already)."""
        queued = await self._queue_open_chunks(store, campaign)
        chunk: list[str] = []
        unsent = {"campaignId": campaign, "status": MessageStatus.PENDING, "vendorMessageId": None}
        cursor = store["communication_log"].find(
            unsent, projection={"_id": 1}, batch_size=jobs.SEND_CHUNK
        )
        async for doc in cursor:
            chunk.append(doc["_id"])
            if len(chunk) == jobs.SEND_CHUNK:
                await self._send_jobs(store, campaign, chunk)
                queued += len(chunk)
                chunk = []
        await self._send_jobs(store, campaign, chunk)
        queued += len(chunk)
        if not queued:
            await mark_sent_if_done(store, campaign)
        return queued

    async def _queue_open_chunks(self, store: TenantStore, campaign: str) -> int:
        """Queue a send job for each of the plan's open chunks; returns how many
        recipients they were planned with."""
        open_chunks = await chunks.open_chunks(store, campaign)
        await jobs.publish(
            self.redis, self.stream, jobs.chunk_jobs(campaign, store.user_id, open_chunks)
        )
        return await chunks.recipients(store, open_chunks)

    async def _send_jobs(self, store: TenantStore, campaign: str, ids: list[str]) -> None:
        await jobs.publish(self.redis, self.stream, jobs.send_jobs(campaign, store.user_id, ids))


def campaign_view(doc: Campaign) -> Doc:
    """A stored campaign as the API and the console show it: its stats by figure (with
    what its messages did), its delivery rate, its tracked links with their clicks and
    what an operator may do now (``crmd.campaigns.schema.Campaign``)."""
    view = {
        "id": str(doc.id),
        "name": doc.name,
        "message": doc.message,
        "subject": doc.subject,
        "html": doc.html,
        "intent": doc.intent,
        "rule": doc.rule,
        "segmentId": doc.segmentId,
        "vendor": doc.vendor,
        "status": doc.status,
        "audienceSize": doc.audienceSize,
        "stats": {
            **{k: doc.stats.get(k, 0) for k in stats.GROUPS},
            **engagement.stats_view(doc.stats, doc.engagement),
        },
        "deliveryRate": stats.delivery_rate(doc.stats, doc.audienceSize),
        "links": engagement.links_view(doc.links, doc.linkClicks),
        "actions": operator_actions(
            doc.status, doc.plannedAt is not None, failed=doc.stats.get("failed", 0)
        ),
        "createdAt": doc.createdAt,
        "scheduledAt": doc.scheduledAt,
        "sentAt": doc.sentAt,
        "completedAt": doc.completedAt,
        "trackClicks": doc.trackClicks,
        "trackOpens": doc.trackOpens,
        "holdout": doc.holdout,
        "attributionDays": doc.attributionDays,
        "revenue": effect.revenue_of(doc),
        "effect": effect.effect_view(doc),
        "variants": effect.variants_view(doc),
        "abTest": effect.ab_view(doc),
    }
    if doc.reason:
        view["reason"] = doc.reason
    return view
