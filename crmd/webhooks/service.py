"""A tenant's webhooks: created, listed, changed, deleted, tested, and their
deliveries read. Every read and write goes through the tenant's store, so another
tenant's webhook is simply not found."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.config import WebhooksConfig
from crmd.errors import BadRequest, Conflict
from crmd.store.tenant import TenantStore, object_id
from crmd.webhooks import deliver, signing, subscribers
from crmd.webhooks.emit import Event, delivery
from crmd.webhooks.kinds import Kind
from crmd.webhooks.schema import (
    CreatedWebhook,
    CreateWebhook,
    Delivery,
    DeliveryList,
    TestResult,
    UpdateWebhook,
    Webhook,
)
from crmd.webhooks.urls import check_url

log = structlog.get_logger(__name__)


def as_webhook(doc: dict[str, Any]) -> Webhook:
    return Webhook(
        str(doc["_id"]),
        doc["url"],
        list(doc["events"]),
        doc.get("description", ""),
        bool(doc["enabled"]),
        _utc(doc["createdAt"]),
        _utc(doc["updatedAt"]),
    )


def as_delivery(doc: dict[str, Any]) -> Delivery:
    return Delivery(
        id=doc["_id"],
        type=doc["type"],
        status=doc["status"],
        attempts=doc["attempts"],
        createdAt=_utc(doc["createdAt"]),
        lastAt=_utc(doc.get("lastAt")),
        nextAt=_utc(doc.get("nextAt")) if doc["status"] == "pending" else None,
        responseStatus=doc.get("responseStatus"),
        responseBody=doc.get("responseBody", ""),
        latencyMs=doc.get("latencyMs"),
        error=doc.get("error", ""),
    )


def _utc(at: Any) -> Any:
    return at.replace(tzinfo=UTC) if isinstance(at, datetime) and at.tzinfo is None else at


def _cursor(doc: dict[str, Any]) -> str:
    at = _utc(doc["createdAt"])
    return f"{round(at.timestamp() * 1000)}.{doc['_id']}"


def _after(cursor: str) -> dict[str, Any]:
    millis, _, last = cursor.partition(".")
    if not millis.isdigit() or not last.startswith("msg_"):
        raise BadRequest("cursor is not one this server gave out", details={"field": "cursor"})
    at = datetime.fromtimestamp(int(millis) / 1000, UTC)
    return {"$or": [{"createdAt": {"$lt": at}}, {"createdAt": at, "_id": {"$lt": last}}]}


class Webhooks:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        redis: Redis,
        prefix: str,
        http: aiohttp.ClientSession,
        settings: WebhooksConfig,
    ) -> None:
        self.db = db
        self.redis = redis
        self.prefix = prefix
        self.http = http
        self.settings = settings

    async def create(self, store: TenantStore, body: CreateWebhook) -> CreatedWebhook:
        url = check_url(body.url, self.settings.allow_private)
        limit = self.settings.max_per_tenant
        if await store["webhooks"].count_documents() >= limit:
            raise Conflict(
                f"a workspace may have at most {limit} webhooks: delete one first",
                code="too_many_webhooks",
            )
        now = datetime.now(UTC)
        secret = signing.new_secret()
        doc = {
            "url": url,
            "events": sorted(set(body.events)),
            "description": body.description.strip(),
            "enabled": True,
            "secret": secret,
            "createdAt": now,
            "updatedAt": now,
        }
        result = await store["webhooks"].insert_one(doc)
        await subscribers.refresh(self.db, store, self.redis, self.prefix)
        log.info("webhook.created", user_id=store.user_id, webhook_id=str(result.inserted_id))
        made = as_webhook({**doc, "_id": result.inserted_id})
        return CreatedWebhook(
            **{f: getattr(made, f) for f in made.__struct_fields__}, secret=secret
        )

    async def list(self, store: TenantStore) -> list[Webhook]:
        found = store["webhooks"].find({}, projection={"secret": 0}, sort=[("createdAt", 1)])
        return [as_webhook(d) async for d in found]

    async def get(self, store: TenantStore, id_text: str) -> Webhook:
        return as_webhook(await store["webhooks"].get(id_text, "webhook", projection={"secret": 0}))

    async def update(self, store: TenantStore, id_text: str, body: UpdateWebhook) -> Webhook:
        await store["webhooks"].get(id_text, "webhook", projection={"_id": 1})
        change: dict[str, Any] = {"updatedAt": datetime.now(UTC)}
        if body.url is not None:
            change["url"] = check_url(body.url, self.settings.allow_private)
        if body.events is not None:
            change["events"] = sorted(set(body.events))
        if body.enabled is not None:
            change["enabled"] = body.enabled
        if body.description is not None:
            change["description"] = body.description.strip()
        hook_id = object_id(id_text, "webhook")
        update: dict[str, Any] = {"$set": change}
        if body.enabled:  # turned on again: its failures start afresh
            update["$unset"] = {"failingSince": "", "disabledReason": ""}
        await store["webhooks"].update_one({"_id": hook_id}, update)
        if body.enabled is False:
            await self._cancel_waiting(store, id_text, "webhook disabled")
        await subscribers.refresh(self.db, store, self.redis, self.prefix)
        return await self.get(store, id_text)

    async def delete(self, store: TenantStore, id_text: str) -> None:
        hook_id = object_id(id_text, "webhook")
        await store["webhooks"].get(id_text, "webhook", projection={"_id": 1})
        await store["webhooks"].delete_one({"_id": hook_id})
        await store["webhook_deliveries"].delete_many({"webhookId": id_text})
        await subscribers.refresh(self.db, store, self.redis, self.prefix)
        log.info("webhook.deleted", user_id=store.user_id, webhook_id=id_text)

    async def _cancel_waiting(self, store: TenantStore, id_text: str, why: str) -> None:
        await store["webhook_deliveries"].update_many(
            {"webhookId": id_text, "status": "pending"},
            {"$set": {"status": "cancelled", "nextAt": None, "error": why}},
        )

    async def test(self, store: TenantStore, id_text: str) -> TestResult:
        """Post a ``webhook.test`` event at once, whether the webhook is enabled or
        not, and answer what the endpoint said. It is in the delivery log; it is not
        tried again."""
        hook = await store["webhooks"].get(id_text, "webhook")
        now = datetime.now(UTC)
        data = {"webhookId": id_text, "message": "a test from crmd"}
        doc = delivery(store.user_id, id_text, Kind.WEBHOOK_TEST, Event(data, at=now), now)
        answer = await deliver.send_now(self.db, self.http, self.settings, hook, doc)
        recorded = await store["webhook_deliveries"].find_one({"_id": doc["_id"]})
        assert recorded is not None
        return TestResult(answer.delivered, as_delivery(recorded))

    async def deliveries(
        self, store: TenantStore, id_text: str, limit: int, cursor: str | None
    ) -> DeliveryList:
        await store["webhooks"].get(id_text, "webhook", projection={"_id": 1})
        where: dict[str, Any] = {"webhookId": id_text}
        if cursor:
            where.update(_after(cursor))
        found = store["webhook_deliveries"].find(
            where,
            projection={"payload": 0},
            sort=[("createdAt", -1), ("_id", -1)],
            limit=limit + 1,
        )
        docs = [d async for d in found]
        more = len(docs) > limit
        docs = docs[:limit]
        return DeliveryList([as_delivery(d) for d in docs], _cursor(docs[-1]) if more else None)
