"""What the vendor answered for a send job's messages, written to their logs: a new
log at hand-over for a chunk's messages, the hand-over recorded on the log of a message
sent again (a flow's, a single one, a retry), and the addresses refused for good put on
the suppression list first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from msgspec.structs import replace

from crmd.campaigns import chunks
from crmd.messages import FINAL_RANK, RANK, MessageStatus
from crmd.store.documents import Doc, MessageLog
from crmd.store.tenant import TenantStore
from crmd.suppressions.entries import Entry, suppress
from crmd.suppressions.failures import dead_in, hard_failure

FAILED_RANK = RANK[MessageStatus.FAILED]


@dataclass
class Handoff:
    """One send job's messages on their way to the vendor. ``fresh`` messages come from
    a chunk and have no log yet; the others are logs sent again."""

    store: TenantStore
    campaign_id: str
    vendor: str
    fresh: bool
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    inserts: list[MessageLog] = field(default_factory=list)
    updates: list[tuple[Doc, Doc]] = field(default_factory=list)
    logged: int = 0
    """Logs this handoff wrote, for the user's tally (added once, at the end: a crash
    before leaves it short until the clock recounts it)."""
    dead: list[Entry] = field(default_factory=list)
    """Addresses the vendor refused for good (``hard_failure``): to be suppressed."""
    sent: int = 0
    """Messages this handoff recorded SENT at hand-over (``Accepted.sent``)."""
    answered: int = 0
    """Messages the vendor answered since the last write (for ``dead_in``)."""
    handed: list[tuple[str, Doc]] = field(default_factory=list)
    """Logs (existing ones) handed over since the last write, with what was handed."""

    def accepted(self, doc: Doc, vendor_id: str, attempts: int, sent: bool = False) -> None:
        """The vendor took it: PENDING until its receipt, or SENT at once when the
        vendor will report nothing more (``Accepted.sent``), in the same write."""
        handed = self._handed(vendor_id, attempts, sent)
        self.sent += int(sent)
        self.answered += 1
        if self.fresh:
            self.inserts.append(
                replace(self._log(doc, handed["status"], attempts), **_nested(handed))
            )
            return
        self.updates.append(_handed_over(doc["_id"], handed))
        self.handed.append((doc["_id"], handed))

    def failed(self, doc: Doc, reason: str, attempts: int, gave_up: bool) -> None:
        # gaveUp: the vendor may have taken it after all; a retry keeps its id.
        self.answered += 1
        failure = {
            "reason": reason,
            "attempts": attempts,
            "updatedAt": self.now,
            "times": {MessageStatus.FAILED: self.now},
            "gaveUp": gave_up,
        }
        if not gave_up and doc.get("recipient") and hard_failure(reason):
            campaign, customer = self.campaign_id, doc.get("customerId")
            self.dead.append(Entry(doc["recipient"], reason, "failure", campaign, customer))
        if self.fresh:
            log = self._log(doc, MessageStatus.FAILED, attempts)
            self.inserts.append(replace(log, **failure, rank=FAILED_RANK))
            return
        failure.pop("times")
        self.updates.append(
            (
                {"_id": doc["_id"], "rank": {"$lt": FAILED_RANK}},
                {
                    "$set": {
                        "status": MessageStatus.FAILED,
                        "rank": FAILED_RANK,
                        f"times.{MessageStatus.FAILED}": self.now,
                        **failure,
                    }
                },
            )
        )

    def retried(self, doc: Doc, attempts: int) -> None:
        self.answered += 1
        if not self.fresh:  # a chunk's count lives in memory: a crash starts it again
            self.updates.append(
                ({"_id": doc["_id"]}, {"$set": {"attempts": attempts, "updatedAt": self.now}})
            )

    async def count(self) -> None:
        await self.store.add_to_tally("messages", self.logged)
        self.logged = 0

    async def write(self) -> None:
        dead = dead_in(self.answered, self.dead)
        if dead:  # before the logs: a crash in between sends again, and fails again
            await suppress(self.store, dead)
        new, there = await chunks.insert_logs(self.store, self.inserts)
        self.logged += new
        # Logged already: by this chunk before a crash (nothing to add), or CANCELLED by
        # a cancel that came while the batch was with the vendor (now it is handed).
        for log in there:
            if log.vendorMessageId is not None:
                sent = log.status == MessageStatus.SENT
                handed = self._handed(log.vendorMessageId, log.attempts, sent)
                self.updates.append(_handed_over(log.id, handed))
                self.handed.append((log.id, handed))
        if self.updates:
            done = await self.store["communication_log"].bulk_update(self.updates)
            if self.handed and done.matched_count < len(self.updates):
                await self._receipt_came_first()
        self.inserts, self.updates, self.dead, self.answered = [], [], [], 0
        self.handed = []
        self.now = datetime.now(UTC)

    async def _receipt_came_first(self) -> None:
        """A vendor that echoes crmd's id may post a message's receipt before this
        write: the log has risen past PENDING, and the hand-over left it alone. It
        keeps what the receipt said and gains the vendor's id (later receipts may name
        the message by it). Not a FAILED log (given up on at hand-over by another
        consumer, or failed by its receipt): it keeps what its failure said, and
        retry-failed starts it again from no vendor id."""
        await self.store["communication_log"].bulk_update(
            [
                (
                    {
                        "_id": log_id,
                        "vendorMessageId": None,
                        "rank": {"$gt": 0, "$lt": FINAL_RANK},
                        "status": {"$ne": MessageStatus.FAILED},
                    },
                    {
                        "$set": {
                            "vendorMessageId": handed["vendorMessageId"],
                            "attempts": handed["attempts"],
                            "handedAt": handed["handedAt"],
                        }
                    },
                )
                for log_id, handed in self.handed
            ]
        )

    def _handed(self, vendor_id: str, attempts: int, sent: bool) -> Doc:
        """The fields a handover sets (``$set`` style). SENT looks exactly as if its
        receipt had been applied (``receipts.status``): its rank and first-seen time."""
        handed = {
            "status": MessageStatus.PENDING,
            "vendorMessageId": vendor_id,
            "attempts": attempts,
            "handedAt": self.now,
            "updatedAt": self.now,
        }
        if sent:
            handed |= {
                "status": MessageStatus.SENT,
                "rank": RANK[MessageStatus.SENT],
                f"times.{MessageStatus.SENT}": self.now,
            }
        return handed

    def _log(self, entry: Doc, status: MessageStatus, attempts: int) -> MessageLog:
        return chunks.new_log(entry, self.campaign_id, self.vendor, status, attempts, self.now)


def _nested(fields: Doc) -> Doc:
    """``$set`` fields as a document to insert: ``times.SENT`` becomes ``times: {SENT}``."""
    doc: Doc = {}
    for key, value in fields.items():
        outer, _, inner = key.partition(".")
        if inner:
            doc.setdefault(outer, {})[inner] = value
        else:
            doc[key] = value
    return doc


def _handed_over(log_id: str, handed: Doc) -> tuple[Doc, Doc]:
    """The update that records a handover on a log that exists already: PENDING (or
    SENT) again if a cancel swept it while the batch was with the vendor (the vendor has
    it). Only a rank-0 log without the vendor's id: one that failed for good or got a
    receipt since (another consumer's) keeps what it knows. A rank-0 log has no
    first-seen time yet (retry-failed clears them), so SENT's is set, not merged."""
    return ({"_id": log_id, "vendorMessageId": None, "rank": 0}, {"$set": handed})
