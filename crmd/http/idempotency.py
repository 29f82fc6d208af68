"""``Idempotency-Key``: a POST retried with the same key gets the first answer again,
and what it asked for is done once.

Any route that creates something wraps its work in ``run_once``. The key is claimed in
MongoDB before the work starts, by inserting a document whose ``_id`` is derived from
the tenant and the key: of two requests with one key at the same moment, only one
insert succeeds, so only one does the work; the other is told to retry (409) until the
first has answered, and then gets that answer. The claim keeps a fingerprint of the
request (method, route, body): the same key with another body is a client's mistake
(422 ``idempotency_key_reused``), not a retry.

What a client sees when crmd dies between the claim and the answer: retries get 409
``idempotency_key_in_progress`` for up to ``LEASE``; after that a retry takes the claim
over and the work runs again **with the same work id** (``Claim.work_id``), which a route
uses to find what the first run left (an ingest batch is an upload with that id: one
already queued is answered, not queued twice). A route whose work cannot be found again
by its id must make the work itself idempotent.

A refusal (a handled error: bad items, 413...) did nothing, so its key is freed: the
corrected request may use it. Keys are kept ``KEEP`` (24 h) after they were claimed,
then forgotten (a TTL index, and an expired claim is ignored even before it goes).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NamedTuple, TypeVar

import msgspec
import structlog
from aiohttp import web
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from crmd.errors import BadRequest, Conflict, CrmdError, Unprocessable
from crmd.http.describe import route_template
from crmd.http.responses import ANSWERED, json_response
from crmd.store.tenant import TenantStore

log = structlog.get_logger(__name__)

HEADER = "Idempotency-Key"
COLLECTION = "idempotency_keys"
MAX_KEY = 255
KEEP = timedelta(hours=24)
LEASE = timedelta(seconds=60)
"""A claim not answered for this long is taken to be dead (its process crashed)."""
_KEY = re.compile(rf"[\x21-\x7e]{{1,{MAX_KEY}}}")
"""Visible ASCII, no spaces; matched whole (``fullmatch``)."""
_ATTEMPTS = 3


class IdempotencyHeaders(msgspec.Struct):
    """The header as a route's ``@described(headers=...)`` declares it."""

    idempotency_key: (
        Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY, pattern=r"^[!-~]+$")] | None
    ) = msgspec.field(default=None, name=HEADER)
    """Any 1 to 255 visible ASCII characters (a UUID is a good choice), kept 24 h: a
    retry with the same key and body gets the first answer again and does nothing more."""


class Claim(NamedTuple):
    work_id: ObjectId
    """The id of what this request creates: the same for a retry that takes over the
    claim of a request that died, so that the work can find what it already did."""
    resumed: bool
    """Taken over from a request that died: some of the work may be done."""


A = TypeVar("A", bound=msgspec.Struct)
Work = Callable[[Claim], Awaitable[tuple[int, A]]]


def idempotency_key(request: web.Request) -> str | None:
    """The request's key; 400 ``bad_idempotency_key`` when it is malformed."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    if not _KEY.fullmatch(raw):
        raise BadRequest(
            f"{HEADER} must be 1 to {MAX_KEY} visible ASCII characters (no spaces)",
            details={"field": HEADER},
            code="bad_idempotency_key",
        )
    return raw


def fingerprint(request: web.Request, body: bytes) -> str:
    """What makes a retry the same request: its method, its route and its body."""
    digest = hashlib.sha256(f"{request.method} {route_template(request)}\x00".encode())
    digest.update(body)
    return digest.hexdigest()


def claim_id(user: str, key: str) -> str:
    return hashlib.sha256(f"{user}\x00{key}".encode()).hexdigest()[:32]


async def run_once(
    request: web.Request, store: TenantStore, body: bytes, answer: type[A], work: Work[A]
) -> web.Response:
    """``work``'s answer, done once per ``Idempotency-Key``: the first request with a
    key does it, a retry with the key and the same body gets its answer again. With no
    key the work simply runs."""
    key = idempotency_key(request)
    if key is None:
        status, result = await work(Claim(ObjectId(), resumed=False))
        return json_response(result, status)
    keys = store[COLLECTION]
    _id = claim_id(store.user_id, key)
    claimed = await _claim(store, _id, fingerprint(request, body))
    if isinstance(claimed, web.Response):
        claimed[ANSWERED] = answer
        return claimed
    try:
        status, result = await work(claimed)
    except Conflict:
        raise  # the work is under way elsewhere: the claim stays, a retry asks again
    except CrmdError:
        # Refused: nothing was done, so the key is free for the corrected request.
        await keys.delete_one({"_id": _id, "workId": claimed.work_id, "status": "pending"})
        raise
    response = json_response(result, status)
    stored = {"status": status, "body": response.body}
    await keys.update_one(
        {"_id": _id, "workId": claimed.work_id},
        {"$set": {"status": "done", "answer": stored, "answeredAt": datetime.now(UTC)}},
    )
    return response


async def _claim(store: TenantStore, _id: str, print_: str) -> Claim | web.Response:
    """The claim on the key, or the answer already given for it."""
    keys = store[COLLECTION]
    for _ in range(_ATTEMPTS):
        now = datetime.now(UTC)
        work_id = ObjectId()
        try:
            await keys.insert_one(
                {
                    "_id": _id,
                    "fingerprint": print_,
                    "status": "pending",
                    "workId": work_id,
                    "claimedAt": now,
                    "expiresAt": now + KEEP,
                }
            )
            return Claim(work_id, resumed=False)
        except DuplicateKeyError:
            pass
        found = await keys.find_one({"_id": _id})
        if found is None:
            continue  # forgotten meanwhile: claim it again
        if _aware(found["expiresAt"]) <= now:
            await keys.delete_one({"_id": _id, "expiresAt": found["expiresAt"]})
            continue
        if found["fingerprint"] != print_:
            raise Unprocessable(
                f"this {HEADER} was used for another request (another body or route); "
                "use a new key for a new request",
                details={"field": HEADER},
                code="idempotency_key_reused",
            )
        if found["status"] == "done":
            stored = found["answer"]
            return web.Response(
                body=bytes(stored["body"]), status=stored["status"], content_type="application/json"
            )
        if _aware(found["claimedAt"]) > now - LEASE:
            raise _in_progress()
        taken = await keys.update_one(
            {"_id": _id, "status": "pending", "claimedAt": found["claimedAt"]},
            {"$set": {"claimedAt": now}},
        )
        if taken.modified_count:
            log.warning("idempotency.resumed", work_id=str(found["workId"]))
            return Claim(found["workId"], resumed=True)
    raise _in_progress()


def _in_progress() -> Conflict:
    error = Conflict(
        f"a request with this {HEADER} is still being handled; retry shortly for its answer",
        details={"field": HEADER},
        code="idempotency_key_in_progress",
    )
    error.retry_after = 2
    return error


def _aware(moment: Any) -> datetime:
    """A stored moment as an aware UTC datetime (the driver may hand it back naive)."""
    value: datetime = moment
    return value if value.tzinfo else value.replace(tzinfo=UTC)
