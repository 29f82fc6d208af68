"""Clicks and opens: answered at once on the request path, applied to the message logs
in batches by the tracking actor.

``/c/<token>`` and ``/o/<token>`` (``crmd.tracking.tokens``) read nothing but the
campaign's links (kept in memory once read) and write nothing but a stream entry: the
redirect or the image does not wait for a message log. The tracking actor then applies
a batch of hits with one update per message: its status rises to CLICKED or OPENED by
the same precedence as receipts (``crmd.receipts.status``), each link's clicks and the
opens are counted, and the entries applied are remembered in the log (``hits``, the
last ``KEEP_HITS``), so that a batch redelivered after a crash, or applied by two
processes, counts each hit once.

An open from a known mail proxy (``MACHINE_AGENTS``) within ``[campaigns]
machine_open_seconds`` of the message's hand-over is a machine's: Apple Mail Privacy
Protection and some image proxies fetch every image as the mail arrives, whoever reads
it. It is counted apart (``machineOpens``) and does not make the message OPENED.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from crmd.messages import MessageStatus, campaign_of
from crmd.receipts.status import as_pipeline
from crmd.store.documents import Doc
from crmd.store.reads import find_in
from crmd.streams.describe import Payload
from crmd.telemetry.metrics import Metrics
from crmd.tracking.tokens import Kind, TrackingLinks

log = structlog.get_logger(__name__)
FIELD = b"hit"
KEEP_HITS = 1000
"""Stream entries remembered per message, at least: the tracking actor keeps twice its
read's size if that is more, so that a redelivered batch, all of whose hits may name one
message, is still remembered whole."""
LINKS_WAIT = 2.0
"""Seconds a click may wait for its campaign's links to be read, before the person is
told to try again (MongoDB away)."""
MAX_AGENT = 200
CACHED_CAMPAIGNS = 2048
MACHINE_AGENTS = re.compile(
    r"GoogleImageProxy|YahooMailProxy|ggpht\.com|Feedfetcher|^Mozilla/5\.0$|"
    r"\b(bot|crawler|spider|preview|proxy)\b",
    re.IGNORECASE,
)
"""User agents of machines that fetch a message's images for its reader: Gmail's and
Yahoo's image proxies, and Apple Mail Privacy Protection, whose fetches say only
``Mozilla/5.0``."""


class Hit(msgspec.Struct, array_like=True, frozen=True):
    """A click (``c``) on a message's link, or an open (``o``)."""

    kind: str
    log: str
    link: int
    at: float
    """Seconds since the epoch."""
    agent: str = ""
    """The user agent, cut to MAX_AGENT: machines' opens are told by it."""


encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder(Hit).decode


def describe(raw: bytes) -> Payload:
    """A hit in words, for a dead letter."""
    hit = decode(raw)
    what = f"a click on link {hit.link}" if hit.kind == "c" else "an open"
    return Payload("tracking", f"{what} of message {hit.log}")


class LinksUnavailable(Exception):
    """The campaign's links could not be read now: the person should try again."""


class Tracker:
    """The request path: a token read, the campaign's links looked up, the hit queued."""

    def __init__(
        self,
        links: TrackingLinks,
        db: AsyncDatabase[Doc],
        redis: Redis,
        stream: str,
        metrics: Metrics,
    ) -> None:
        self.links = links
        self.db = db
        self.redis = redis
        self.stream = stream
        self.metrics = metrics
        self._campaign_links: OrderedDict[str, list[str]] = OrderedDict()
        self._reading: dict[str, asyncio.Future[list[str]]] = {}
        """Campaigns whose links are being read: the clicks that come meanwhile wait for
        that one read."""

    async def click(self, token: str, agent: str) -> str | None:
        """Where the click goes (one of its campaign's own links), the click queued; None
        for a token that is not crmd's, is changed or has expired, or a link the
        campaign does not have."""
        target = self.links.read("c", token)
        campaign = campaign_of(target.log_id) if target else None
        try:
            async with asyncio.timeout(LINKS_WAIT):
                urls = await self.campaign_links(campaign) if target and campaign else []
        except (PyMongoError, TimeoutError) as exc:
            self.metrics.tracking.labels("c", "unavailable").inc()
            log.warning("tracking.unavailable", error=str(exc)[:200])
            raise LinksUnavailable from None
        if target is None or not 0 <= target.link < len(urls):
            self._refused("c")
            return None
        await self._queue(Hit("c", target.log_id, target.link, time.time(), agent[:MAX_AGENT]))
        return urls[target.link]

    async def open(self, token: str, agent: str) -> bool:
        """True when the token is one of crmd's open tokens (the open queued)."""
        target = self.links.read("o", token)
        if target is None:
            self._refused("o")
            return False
        await self._queue(Hit("o", target.log_id, 0, time.time(), agent[:MAX_AGENT]))
        return True

    async def campaign_links(self, campaign: str) -> list[str]:
        """The campaign's links (read once: they never change after it is created). By
        its id alone, across tenants: the id comes from a token crmd signed. A
        campaign's first clicks come together (thirty people open the mail at once):
        they wait for one read, not each for its own behind the others."""
        if campaign in self._campaign_links:
            self._campaign_links.move_to_end(campaign)
            return self._campaign_links[campaign]
        reading = self._reading.get(campaign)
        if reading is None:
            reading = self._reading[campaign] = asyncio.ensure_future(self._read_links(campaign))
            reading.add_done_callback(lambda done: self._read(campaign, done))
        # (shielded: a click that gives up waiting leaves the read to the others)
        return await asyncio.shield(reading)

    def _read(self, campaign: str, done: asyncio.Future[list[str]]) -> None:
        self._reading.pop(campaign, None)
        if not done.cancelled():
            done.exception()  # (retrieved: every click may have given up on it)

    async def _read_links(self, campaign: str) -> list[str]:
        try:
            key = ObjectId(campaign)
        except InvalidId:
            return []
        doc = await self.db.campaigns.find_one({"_id": key}, projection={"links": 1})
        urls = [str(u) for u in (doc or {}).get("links") or []]
        if doc is not None:
            self._campaign_links[campaign] = urls
            if len(self._campaign_links) > CACHED_CAMPAIGNS:
                self._campaign_links.popitem(last=False)
        return urls

    async def _queue(self, hit: Hit) -> None:
        """Queue the hit; when Redis cannot take it, the person still gets their page and
        the hit is counted as lost."""
        try:
            await self.redis.xadd(self.stream, {FIELD: encode(hit)})
            self.metrics.tracking.labels(hit.kind, "queued").inc()
        except (RedisError, OSError) as exc:
            self.metrics.tracking.labels(hit.kind, "lost").inc()
            log.warning("tracking.lost", kind=hit.kind, error=str(exc)[:200])

    def _refused(self, kind: Kind) -> None:
        self.metrics.tracking.labels(kind, "refused").inc()
        log.info("tracking.refused", kind=kind)


class Tally(msgspec.Struct):
    """A batch's hits on one message, each by its stream entry's id (``sortable``)."""

    ids: list[str] = []
    click_ids: dict[int, list[str]] = {}
    """Each link's clicks."""
    first_click: datetime | None = None
    opens: list[str] = []
    """People's opens."""
    first_open: datetime | None = None
    machine: list[str] = []
    """Machines' opens."""


LOG_FIELDS = {"userId": 1, "campaignId": 1, "handedAt": 1, "times": 1}


def is_machine(hit: Hit, handed: datetime | None, within: float) -> bool:
    """An open by a known proxy, within ``within`` seconds of hand-over."""
    if hit.kind != "o" or handed is None or not MACHINE_AGENTS.search(hit.agent or ""):
        return False
    handed = handed if handed.tzinfo else handed.replace(tzinfo=UTC)
    return hit.at - handed.timestamp() <= within


def sortable(entry_id: str) -> str:
    """A stream entry's id, zero-padded so that ids sort as text."""
    ms, _, seq = entry_id.partition("-")
    return f"{int(ms):015d}-{int(seq or 0):06d}"


async def apply_hits(
    db: AsyncDatabase[Doc],
    hits: Sequence[tuple[str, Hit]],
    machine_seconds: float,
    keep: int = KEEP_HITS,
) -> set[tuple[str, str]]:
    """Apply (entry id, hit) pairs: one update per message named. Returns the (user,
    campaign) pairs touched, for their stats to be recounted."""
    logs = {
        d["_id"]: d
        async for d in find_in(
            db.communication_log, "_id", sorted({h.log for _, h in hits}), None, LOG_FIELDS
        )
    }
    tallies: dict[str, Tally] = defaultdict(Tally)
    unknown = 0
    for entry_id, hit in hits:
        found = logs.get(hit.log)
        if found is None:
            unknown += 1  # a message since deleted (or a campaign's logs removed)
            continue
        tally = tallies[hit.log]
        key = sortable(entry_id)
        tally.ids.append(key)
        at = datetime.fromtimestamp(hit.at, UTC)
        if hit.kind == "c":
            tally.click_ids.setdefault(hit.link, []).append(key)
            tally.first_click = min(at, tally.first_click or at)
        elif is_machine(hit, found.get("handedAt"), machine_seconds):
            tally.machine.append(key)
        else:
            tally.opens.append(key)
            tally.first_open = min(at, tally.first_open or at)
    if unknown:
        log.info("tracking.unknown_message", count=unknown)
    now = datetime.now(UTC)
    updates = [UpdateOne({"_id": log_id}, pipeline(t, now, keep)) for log_id, t in tallies.items()]
    if updates:
        await db.communication_log.bulk_write(updates, ordered=False)
    return {(logs[i]["userId"], logs[i]["campaignId"]) for i in tallies}


def _new(ids: list[str]) -> dict[str, Any]:
    """How many of ``ids`` the log has not counted yet."""
    return {"$size": {"$setDifference": [ids, {"$ifNull": ["$hits", []]}]}}


def _add(field: str, ids: list[str]) -> dict[str, Any]:
    return {"$add": [{"$ifNull": [f"${field}", 0]}, _new(ids)]}


def pipeline(tally: Tally, now: datetime, keep: int = KEEP_HITS) -> list[Doc]:
    """The one update a message's hits need, right however often it is applied: each
    count grows only by the entries the log has not remembered, and the status rises
    only as receipts make it rise (a first-seen time counts whenever it is earlier:
    a redelivered hit is never later than itself)."""
    stages: list[Doc] = []
    if tally.first_open is not None:
        stages += as_pipeline(MessageStatus.OPENED, tally.first_open, now)
    if tally.first_click is not None:
        stages += as_pipeline(MessageStatus.CLICKED, tally.first_click, now)
    counts: Doc = {
        f"clicks.{link}": _add(f"clicks.{link}", ids) for link, ids in tally.click_ids.items()
    }
    if tally.opens:
        counts["opens"] = _add("opens", tally.opens)
    if tally.machine:
        counts["machineOpens"] = _add("machineOpens", tally.machine)
    stages.append({"$set": counts})
    unseen = {"$setDifference": [sorted(set(tally.ids)), {"$ifNull": ["$hits", []]}]}
    remembered = {"$concatArrays": [{"$ifNull": ["$hits", []]}, unseen]}
    stages.append({"$set": {"hits": {"$slice": [remembered, -keep]}}})
    return stages
