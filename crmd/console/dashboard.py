"""The dashboard, the plugins and the system pages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
from aiohttp import web

from crmd.auth.requests import tenant_id, tenant_store
from crmd.campaigns import jobs
from crmd.campaigns.service import campaign_view
from crmd.console.web import render
from crmd.http.keys import CAMPAIGNS, HEALTH, SUGGESTERS
from crmd.ingest import chunks
from crmd.ingest.upload import SUMMARY
from crmd.store.documents import Campaign, UploadSummary, decode_all
from crmd.store.windows import newest
from crmd.streams.worker import LAG_COUNTED, dead_letter_stream, stream_stats

routes = web.RouteTableDef()
ACTIVE_IMPORTS = ("receiving", "queued", "processing")
CHECK_SECONDS = 5.0
DEAD_SCANNED = 200


@routes.get("/")
async def dashboard(request: web.Request) -> web.Response:
    store = tenant_store(request)
    recent = await newest(store["campaigns"], await store.highest("campaigns"), limit=5)
    uploads = await newest(
        store["uploads"],
        await store.highest("uploads"),
        limit=20,
        projection=SUMMARY,
    )
    return render(
        request,
        "dashboard.html",
        {
            "tally": await store.tally(),
            "campaigns": [campaign_view(c) for c in decode_all(recent.items, Campaign)],
            "imports": [
                u for u in decode_all(uploads.items, UploadSummary) if u.status in ACTIVE_IMPORTS
            ],
        },
        section="Dashboard",
    )


async def _vendor_health(vendor: Any) -> dict[str, Any]:
    try:
        result = await asyncio.wait_for(vendor.check(), CHECK_SECONDS)
    except Exception as exc:  # a plugin's failure is shown, not raised
        return {"health": "down", "detail": f"{type(exc).__name__}: {exc}"[:200]}
    return {"health": "ok" if result.ok else "down", "detail": result.detail[:200]}


@routes.get("/plugins")
async def plugins(request: web.Request) -> web.Response:
    vendors = request.app[CAMPAIGNS].vendors
    loaded = list(vendors.by_name.values())
    checks = await asyncio.gather(*(_vendor_health(v) for v in loaded))
    suggesters = request.app[SUGGESTERS]
    listed = []
    for order, suggester in enumerate(suggesters.ordered, start=1):
        last = suggesters.last.get(suggester.name)
        if last is None:
            health, detail = "unknown", "not asked since crmd started"
        else:
            answered, what, at = last
            moment = datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S UTC")
            health, detail = ("ok" if answered else "failing"), f"{what} at {moment}"
        listed.append({"name": suggester.name, "order": order, "health": health, "detail": detail})
    return render(
        request,
        "plugins.html",
        {
            "vendors": [
                {
                    "name": v.name,
                    "plugin": type(v).__module__.split(".")[0],
                    "default": v.name == vendors.default,
                    **check,
                }
                for v, check in zip(loaded, checks, strict=True)
            ],
            "suggesters": listed,
        },
        section="Plugins",
    )


@routes.get("/system")
async def system(request: web.Request) -> web.Response:
    health = request.app[HEALTH]
    _, report = await health.readiness()
    streams = []
    mine = []
    user = tenant_id(request)
    for stream in health.streams:
        stats = await stream_stats(health.redis, stream)
        groups = stats["groups"].values()
        dead = dead_letter_stream(stream)
        streams.append(
            {
                "name": stream,
                "length": stats["length"],
                "pending": sum(g["pending"] for g in groups),
                "waiting": sum(g["lag"] for g in groups),
                "more": any(g["lag"] >= LAG_COUNTED for g in groups),
                "dead": await health.redis.xlen(dead),
            }
        )
        # Dead letters hold other users' work too: only the signed-in user's are listed.
        entries = await health.redis.xrevrange(dead, count=DEAD_SCANNED)
        for entry_id, fields in cast(list[tuple[bytes, dict[bytes, bytes]]], entries or []):
            if _owner(fields) == user:
                mine.append(
                    {
                        "stream": stream,
                        "source": _text(fields.get(b"_dead_source_id", entry_id)),
                        "deliveries": _text(fields.get(b"_dead_deliveries", b"")),
                        "error": _text(fields.get(b"_dead_error", b""))[:300],
                    }
                )
    return render(
        request,
        "system.html",
        {
            "actors": report["actors"],
            "dependencies": report["dependencies"],
            "streams": streams,
            "dead": mine,
            "dead_scanned": DEAD_SCANNED,
        },
        section="System",
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _owner(fields: dict[bytes, bytes]) -> str | None:
    """The user a dead entry's work belongs to (a receipt batch belongs to no one: its
    events are matched to users only when applied)."""
    try:
        if jobs.FIELD in fields:
            return jobs.decode(fields[jobs.FIELD]).user
        if chunks.FIELD in fields:
            return chunks.decode(fields[chunks.FIELD]).user
    except msgspec.DecodeError:
        return None
    return None
