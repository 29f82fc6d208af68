"""What a campaign earned and what it changed: its attributed orders summed by group,
and the comparison of the messaged group with the held-out one (and of A/B variants
with each other), with 95 % intervals (``crmd.campaigns.intervals``).

The sums (``results`` on the campaign) are counted again from the campaign's
attributions whenever orders touched it (``resultsDirty``, set by
``crmd.campaigns.attribution``): per group (messaged, held out) and per variant, the
customers who ordered, their orders, revenue, and the sum of each customer's revenue
squared (for Welch's interval); and, for the messaged, the same split by whether their
message was clicked. The group sizes come from the campaign's stats (its logs by
status): messaged are the recipients handed over or failed (the group is who was meant
to be messaged, whatever the vendor did), held out the HELD_OUT ones; recipients never
handed over (cancelled, suppressed) are in neither.

A figure is provisional until the last recipient's attribution window has closed
(``sentAt`` + ``attributionDays``): orders still arrive, and judging the lift before
then is peeking. Below ``MIN_CUSTOMERS`` in either group, or ``MIN_CONVERSIONS`` in
both together, the intervals are shown but ``enoughData`` is false."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from crmd.campaigns.attribution import utc
from crmd.campaigns.engagement import UNSENT
from crmd.campaigns.intervals import (
    Interval,
    mean_difference,
    mean_interval,
    proportion_difference,
    proportion_interval,
    scaled,
)
from crmd.messages import MessageStatus
from crmd.store.documents import Campaign, Doc
from crmd.store.tenant import TenantStore

S = MessageStatus
MIN_CUSTOMERS = 50
"""Customers in each group below which the effect is "not enough data yet"."""
MIN_CONVERSIONS = 10
"""Converted customers, both groups together, below which likewise."""
NOT_MESSAGED = UNSENT
RESULTS_EVERY = 10
"""Seconds between two sums of one campaign's results by the clock, at least (and four
times as long as the last sum took: sums take a fifth of the time at most)."""
SUMS = ("converted", "orders", "revenue", "revenueSq")
LABELS = "ABCDE"


def _sums() -> dict[str, float]:
    return dict.fromkeys(SUMS, 0.0)


def _add(into: dict[str, float], orders: int, revenue: float) -> None:
    into["converted"] += 1
    into["orders"] += orders
    into["revenue"] += revenue
    into["revenueSq"] += revenue * revenue


async def count_results(
    store: TenantStore, campaign_id: str, any_clicked: bool = True
) -> dict[str, Any]:
    """The campaign's attributions summed: ``groups`` (messaged, held), ``variants``
    (by index), ``clicked`` and ``notClicked`` (the messaged, by their message)."""
    per_customer = await store["attributions"].aggregate(
        [
            {"$match": {"campaignId": campaign_id}},
            {
                "$group": {
                    "_id": {"c": "$customerId", "g": "$group", "v": "$variant"},
                    "revenue": {"$sum": "$amount"},
                    "orders": {"$sum": 1},
                    "log": {"$first": "$logId"},
                }
            },
        ]
    )
    rows = [row async for row in per_customer]
    clicked: set[str] = set()
    if any_clicked:  # (else no log need be read: none was clicked)
        messaged_logs = [row["log"] for row in rows if row["_id"]["g"] == "messaged"]
        clicked = await _clicked(store, messaged_logs)
    groups = {"messaged": _sums(), "held": _sums()}
    variants: dict[str, dict[str, float]] = defaultdict(_sums)
    by_click = {"clicked": _sums(), "notClicked": _sums()}
    for row in rows:
        key, orders, revenue = row["_id"], int(row["orders"]), float(row["revenue"])
        _add(groups[key["g"]], orders, revenue)
        if key["g"] != "messaged":
            continue
        if key.get("v") is not None:
            _add(variants[str(key["v"])], orders, revenue)
        _add(by_click["clicked" if row["log"] in clicked else "notClicked"], orders, revenue)
    return {"groups": groups, "variants": dict(variants), **by_click}


async def _clicked(store: TenantStore, log_ids: list[str]) -> set[str]:
    if not log_ids:
        return set()
    found = await store["communication_log"].by_ids(log_ids, projection={"times": 1})
    return {d["_id"] for d in found if (d.get("times") or {}).get(S.CLICKED)}


async def refresh_results(store: TenantStore, campaign_id: str, seen: int = 0) -> dict[str, Any]:
    """Count and store the campaign's results; ``seen``: the ``resultsDirty`` mark read
    before counting, taken off after (a mark made meanwhile stays, for the next pass)."""
    started = time.monotonic()
    found = await store["campaigns"].find_one(
        {"_id": ObjectId(campaign_id)}, projection={"engagement.clicked": 1}
    )
    any_clicked = bool(((found or {}).get("engagement") or {}).get("clicked"))
    results = {
        **await count_results(store, campaign_id, any_clicked),
        "countedAt": datetime.now(UTC),
        "seconds": round(time.monotonic() - started, 3),
    }
    update: Doc = {"$set": {"results": results}}
    if seen:
        update["$inc"] = {"resultsDirty": -seen}
    await store["campaigns"].update_one({"_id": ObjectId(campaign_id)}, update)
    return results


async def refresh_dirty(
    db: AsyncDatabase[Doc], now: datetime | None = None, limit: int = 100
) -> int:
    """The clock's pass: count again the results of campaigns whose attributions
    changed (across tenants: a maintenance pass), each at most every ``RESULTS_EVERY``
    seconds or four times its last sum's time (a sum reads all the campaign's
    attributions: while an upload of orders runs, once a tick would read them over and
    over). Returns how many were counted."""
    counted = 0
    now = now or datetime.now(UTC)
    dirty = db.campaigns.find(
        {"resultsDirty": {"$gt": 0}},
        projection={"userId": 1, "resultsDirty": 1, "results.countedAt": 1, "results.seconds": 1},
        limit=limit,
    )
    async for campaign in dirty:
        results = campaign.get("results") or {}
        last, took = results.get("countedAt"), float(results.get("seconds") or 0)
        gap = timedelta(seconds=max(RESULTS_EVERY, 4 * took))
        if last is not None and now - utc(last) < gap:
            continue
        store = TenantStore(db, campaign["userId"])
        await refresh_results(store, str(campaign["_id"]), int(campaign["resultsDirty"]))
        counted += 1
    return counted


# The figures as the API shows them.


def _round(interval: Interval | None, places: int = 6) -> dict[str, float] | None:
    if interval is None:
        return None
    return {k: round(getattr(interval, k), places) for k in ("estimate", "low", "high")}


def group_figures(customers: int, sums: dict[str, Any] | None) -> dict[str, Any]:
    got = sums or _sums()
    converted, revenue = int(got.get("converted", 0)), float(got.get("revenue", 0.0))
    return {
        "customers": customers,
        "converted": converted,
        "orders": int(got.get("orders", 0)),
        "revenue": round(revenue, 2),
        "conversionRate": round(converted / customers, 4) if customers else None,
        "revenuePerCustomer": round(revenue / customers, 2) if customers else None,
    }


def group_sizes(doc: Campaign) -> tuple[int, int]:
    """(messaged, held out) recipients, from the campaign's logs by status."""
    by_status = doc.byStatus
    messaged = sum(n for status, n in by_status.items() if status not in NOT_MESSAGED)
    return messaged, int(by_status.get(S.HELD_OUT, 0))


def window(doc: Campaign, now: datetime) -> dict[str, Any]:
    closes = None
    if doc.sentAt is not None:
        closes = utc(doc.sentAt) + timedelta(days=doc.attributionDays)
    return {
        "days": doc.attributionDays,
        "closesAt": closes,
        "provisional": closes is None or now < closes,
    }


def effect_view(doc: Campaign, now: datetime | None = None) -> dict[str, Any]:
    """The campaign's ``effect`` (``crmd.campaigns.schema.Effect``)."""
    results = doc.results or {}
    groups = results.get("groups") or {}
    m, h = groups.get("messaged") or _sums(), groups.get("held") or _sums()
    # The sizes are recounted after receipts, the sums by the clock: a group's converted
    # customers may be summed before its logs are counted, and are in it all the same.
    sizes = group_sizes(doc)
    messaged, held = max(sizes[0], int(m["converted"])), max(sizes[1], int(h["converted"]))
    conversion = revenue = None
    if held:
        conversion = proportion_difference(int(m["converted"]), messaged, int(h["converted"]), held)
        revenue = mean_difference(
            m["revenue"], m["revenueSq"], messaged, h["revenue"], h["revenueSq"], held
        )
    converted = int(m["converted"]) + int(h["converted"])
    enough = min(messaged, held) >= MIN_CUSTOMERS and converted >= MIN_CONVERSIONS
    view: dict[str, Any] = {
        "window": window(doc, now or datetime.now(UTC)),
        "messaged": group_figures(messaged, m),
        "heldOut": group_figures(held, h),
        "conversionLift": _round(conversion),
        "revenueLift": _round(revenue),
        "incrementalConversions": _round(scaled(conversion, messaged), 2),
        "incrementalRevenue": _round(scaled(revenue, messaged), 2),
        "enoughData": bool(held) and enough,
        "minimum": {"customers": MIN_CUSTOMERS, "conversions": MIN_CONVERSIONS},
    }
    if doc.trackClicks:
        clicked = int(doc.engagement.get("clicked", 0))
        view["clicked"] = group_figures(clicked, results.get("clicked"))
        view["notClicked"] = group_figures(messaged - clicked, results.get("notClicked"))
    return view


def revenue_of(doc: Campaign) -> float:
    """Revenue attributed to the campaign's messaged recipients."""
    messaged = ((doc.results or {}).get("groups") or {}).get("messaged") or {}
    return round(float(messaged.get("revenue", 0.0)), 2)


def variant_metric(metric: str, recipients: int, clicked: int, sums: dict[str, Any]) -> Any:
    """A variant's figure by ``metric``, per recipient, with its interval."""
    if metric == "clicks":
        return proportion_interval(clicked, recipients)
    if metric == "conversions":
        return proportion_interval(int(sums.get("converted", 0)), recipients)
    return mean_interval(
        float(sums.get("revenue", 0.0)), float(sums.get("revenueSq", 0.0)), recipients
    )


def variants_view(doc: Campaign) -> list[dict[str, Any]]:
    """Each A/B variant with its recipients and results (``schema.VariantFigures``)."""
    metric = doc.abTest.metric if doc.abTest else "clicks"
    counted = (doc.results or {}).get("variants") or {}
    rows = []
    for index, variant in enumerate(doc.variants):
        got = doc.variantStats.get(str(index)) or {}
        sums = counted.get(str(index)) or _sums()
        clicked = int(got.get("clicked", 0))
        # (Its buyers may be summed before its logs are recounted: see effect_view.)
        recipients = max(int(got.get("recipients", 0)), int(sums.get("converted", 0)))
        rows.append(
            {
                "index": index,
                "label": LABELS[index],
                "message": variant.message,
                "subject": variant.subject,
                "html": variant.html,
                "recipients": recipients,
                "clicked": clicked,
                "converted": int(sums.get("converted", 0)),
                "revenue": round(float(sums.get("revenue", 0.0)), 2),
                "metric": _round(variant_metric(metric, recipients, clicked, sums)),
            }
        )
    return rows


def ab_view(doc: Campaign) -> dict[str, Any] | None:
    test = doc.abTest
    if test is None:
        return None
    winner = None
    if doc.winner is not None:
        winner = {**msgspec.to_builtins(doc.winner), "label": LABELS[doc.winner.variant]}
        winner["decidedAt"] = doc.winner.decidedAt
    return {
        "mode": test.mode,
        "testPercent": test.testPercent,
        "waitMinutes": test.waitMinutes,
        "metric": test.metric,
        "decideAt": doc.decideAt,
        "winner": winner,
    }
