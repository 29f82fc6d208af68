"""What a campaign's messages did after hand-over, counted from their logs: bounced
(hard and soft), complained, opened (by people and by machines), clicked, and the clicks
per tracked link.

The facts are written on each message log by whatever learns them (click and open
tracking, the bounces listener, provider webhooks): ``status``, ``times.<STATUS>`` (the
first time each was reported, ``SOFT_BOUNCED`` included though it is never a status),
``opens`` and ``machineOpens`` (opens by mail privacy proxies and prefetchers), and
``clicks`` (``{"<link index>": clicks}``). This module only counts them: one ``$group``
over the campaign's logs by status and by which of those facts each has
(``LOG_GROUPS``), folded here into the figures (``tally``), and one more over the logs
that were clicked, per link (``LINK_CLICKS``). Pure: the pipelines are values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from crmd.messages import MessageStatus
from crmd.store.documents import LogLine

S = MessageStatus


def _has(field: str) -> dict[str, Any]:
    # A missing field and a null sort at or below null, a time or a document above it.
    # (One comparison: SecantusDB evaluates each expression in Python, per log, and
    # $ne of $ifNull cost the recount half as much again.)
    return {"$gt": [f"${field}", None]}


class LogActivity(LogLine, frozen=True, kw_only=True):
    """A recipient's line with what its message did (``projection(LogActivity)``)."""

    times: dict[str, datetime] = {}
    """The first time each status was reported (``SOFT_BOUNCED`` too)."""
    opens: int = 0
    machineOpens: int = 0
    clicks: dict[str, int] = {}
    """Clicks by link index."""


FLAGS: dict[str, dict[str, Any]] = {
    "soft": _has(f"times.{S.SOFT_BOUNCED}"),
    "opened": _has(f"times.{S.OPENED}"),
    "machine": {"$gt": ["$machineOpens", 0]},  # (missing sorts below every number)
    "clicked": _has(f"times.{S.CLICKED}"),
    "clicks": _has("clicks"),
}
"""What the grouping asks of each log besides its status, each a true or false."""

FIGURES = (
    "bouncedHard",
    "bouncedSoft",
    "complained",
    "openedPeople",
    "openedMachine",
    "clicked",
    "clicks",
)
"""The figures of what messages did, as a campaign stores them (``engagement``);
``clicks`` is the total of every link's clicks."""


def log_groups(campaign_id: str) -> list[dict[str, Any]]:
    """The pipeline that counts a campaign's logs by status, A/B variant (null: none)
    and ``FLAGS``: each result is ``{"_id": {"status": ..., "variant": ..., <flag>:
    bool, ...}, "n": count}``."""
    return [
        {"$match": {"campaignId": campaign_id}},
        {
            "$group": {
                "_id": {"status": "$status", "variant": "$variant", **FLAGS},
                "n": {"$sum": 1},
            }
        },
    ]


def link_clicks(campaign_id: str) -> list[dict[str, Any]]:
    """The pipeline that counts a campaign's clicks per link: each result is
    ``{"_id": "<link index>", "unique": logs, "total": clicks}``. Reads only the logs
    that were clicked."""
    return [
        {"$match": {"campaignId": campaign_id, "clicks": {"$exists": True}}},
        {"$project": {"link": {"$objectToArray": "$clicks"}}},
        {"$unwind": "$link"},
        {"$group": {"_id": "$link.k", "unique": {"$sum": 1}, "total": {"$sum": "$link.v"}}},
    ]


def tally(groups: Iterable[Mapping[str, Any]]) -> tuple[dict[str, int], dict[str, int], bool]:
    """From ``log_groups``'s results: the logs by status, the ``FIGURES`` but ``clicks``
    (0 here: it comes from the per-link count) and whether any log has clicks."""
    by_status: dict[str, int] = {}
    figures = dict.fromkeys(FIGURES, 0)
    any_clicks = False
    for group in groups:
        key, n = group["_id"], int(group["n"])
        status = key["status"]
        by_status[status] = by_status.get(status, 0) + n
        hard = status == S.BOUNCED
        figures["bouncedHard"] += n if hard else 0
        figures["bouncedSoft"] += n if key["soft"] and not hard else 0
        figures["complained"] += n if status == S.COMPLAINED else 0
        figures["openedPeople"] += n if key["opened"] else 0
        figures["openedMachine"] += n if key["machine"] and not key["opened"] else 0
        figures["clicked"] += n if key["clicked"] else 0
        any_clicks = any_clicks or bool(key["clicks"])
    return by_status, figures, any_clicks


UNSENT = (S.HELD_OUT, S.CANCELLED, S.SUPPRESSED)


def by_variant(groups: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """From ``log_groups``'s results: each A/B variant's ``recipients`` (messaged:
    neither held out nor never sent) and ``clicked``."""
    counted: dict[str, dict[str, int]] = {}
    for group in groups:
        key, n = group["_id"], int(group["n"])
        if key.get("variant") is None or key["status"] in UNSENT:
            continue
        figures = counted.setdefault(str(key["variant"]), {"recipients": 0, "clicked": 0})
        figures["recipients"] += n
        figures["clicked"] += n if key["clicked"] else 0
    return counted


def links_by_index(counted: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    """From ``link_clicks``'s results: ``{"<link index>": [unique, total]}``, as a
    campaign stores it (``linkClicks``)."""
    return {
        str(row["_id"]): [int(row["unique"]), int(row["total"])]
        for row in counted
        if str(row["_id"]).isdigit()
    }


def links_view(urls: Sequence[str], counted: Mapping[str, Sequence[int]]) -> list[dict[str, Any]]:
    """Each tracked link with its clicks, in the order of its index: ``url``, ``index``,
    ``unique`` (messages that clicked it), ``total`` (clicks) and ``share`` (of every
    link's clicks; None before the first)."""
    every = sum(int(v[1]) for v in counted.values() if len(v) == 2)
    rows = []
    for index, url in enumerate(urls):
        unique, total = counted.get(str(index), (0, 0))
        share = round(total / every, 4) if every else None
        rows.append({"url": url, "index": index, "unique": unique, "total": total, "share": share})
    return rows


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def stats_view(stats: Mapping[str, int], done: Mapping[str, int]) -> dict[str, Any]:
    """The API's figures of what the messages did (``schema.CampaignStats``), from a
    campaign's stored ``stats`` and ``engagement``."""
    delivered = int(stats.get("delivered", 0))
    handed = sum(int(stats.get(k, 0)) for k in ("sent", "delivered", "failed", "unknown"))
    got = {k: int(done.get(k, 0)) for k in FIGURES}
    return {
        "bounced": {"hard": got["bouncedHard"], "soft": got["bouncedSoft"]},
        "complained": got["complained"],
        "opened": {"people": got["openedPeople"], "machine": got["openedMachine"]},
        "clicked": got["clicked"],
        "clicks": got["clicks"],
        "openRate": rate(got["openedPeople"], delivered),
        "clickRate": rate(got["clicked"], delivered),
        "complaintRate": rate(got["complained"], delivered),
        "bounceRate": rate(got["bouncedHard"], handed),
    }


STEPS = (
    (S.SENT, "Handed over"),
    (S.DELIVERED, "Delivered"),
    (S.OPENED, "Opened"),
    (S.CLICKED, "Clicked"),
    (S.SOFT_BOUNCED, "Soft bounce"),
    (S.BOUNCED, "Bounced"),
    (S.FAILED, "Failed"),
    (S.COMPLAINED, "Marked as spam"),
)
"""What a message's first-seen ``times`` tell, as a customer's page says it."""


def what_it_did(log: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A message's story from its log, in the order it happened: each step's ``said``,
    its ``at`` (None: when is not known) and ``detail`` (how many opens or clicks)."""
    times = log.get("times") or {}
    opens, machine = int(log.get("opens") or 0), int(log.get("machineOpens") or 0)
    clicks = sum(int(n) for n in (log.get("clicks") or {}).values())
    details = {
        S.OPENED: f"{opens:,} time{'s' * (opens != 1)}" if opens else "",
        S.CLICKED: f"{clicks:,} click{'s' * (clicks != 1)}" if clicks else "",
    }
    steps = [
        {"said": said, "at": times[status], "detail": details.get(status, "")}
        for status, said in STEPS
        if times.get(status)
    ]
    steps.sort(key=lambda step: step["at"])
    if machine and not times.get(S.OPENED):
        steps.append({"said": "Opened by a machine only", "at": None, "detail": ""})
    return steps
