"""What a stream entry says, in words: for an operator looking at a dead letter.

Pure: the entry's fields in, a ``Payload`` out. Each of crmd's streams carries one
msgpack field (``chunk`` on ingest, ``job`` on dispatch, ``receipts`` on receipts); it is
decoded with the stream's own decoder and summed up in a line. Anything else (a field
crmd does not know, a value that does not decode) is shown as a bounded repr, so a
hostile or huge entry cannot flood a terminal or a response.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

import msgspec

from crmd.campaigns import jobs
from crmd.ingest import chunks
from crmd.receipts import batch

MAX_VALUE = 80
"""Characters of an unknown field's value that are shown."""
MAX_SUMMARY = 500


class Payload(msgspec.Struct, frozen=True):
    kind: str
    """``ingest chunk``, ``dispatch job``, ``receipts``, or ``unknown``."""
    summary: str
    user: str | None = None
    """The tenant the entry belongs to, when it names one. Receipts never do: a vendor's
    callback may cover several tenants, and the tenant comes from crmd's own log of each
    message, never from the payload."""


def _ingest(raw: bytes) -> Payload:
    chunk = chunks.decode(raw)
    rows = chunk.customers or chunk.orders
    lines = f", lines {rows[0].line}-{rows[-1].line}" if rows else ""
    summary = f"{chunk.kind} chunk {chunk.seq} of upload {chunk.upload}: {chunk.size} rows{lines}"
    return Payload("ingest chunk", summary, chunk.user)


def _dispatch(raw: bytes) -> Payload:
    job = jobs.decode(raw)
    if job.kind == "plan":
        what = f"plan campaign {job.campaign} from customer {job.start}"
    elif job.kind == "send" and job.chunk:
        what = f"send campaign {job.campaign}, planned chunk {job.chunk}"
    elif job.kind == "send":
        what = f"send campaign {job.campaign}, {len(job.ids)} messages"
    else:
        what = f"{job.kind} campaign {job.campaign}"
    return Payload("dispatch job", what, job.user)


def _receipts(raw: bytes) -> Payload:
    received = batch.decode(raw)
    statuses = Counter(event.status for event in received.events)
    counts = ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
    summary = f"{len(received.events)} receipt events from vendor {received.vendor}"
    return Payload("receipts", f"{summary} ({counts})" if counts else summary)


DESCRIBERS: Mapping[bytes, Callable[[bytes], Payload]] = {
    chunks.FIELD: _ingest,
    jobs.FIELD: _dispatch,
    batch.FIELD: _receipts,
}


def shown(value: bytes, limit: int = MAX_VALUE) -> str:
    """A value as text if it is printable text, else as bytes; cut at ``limit``."""
    try:
        text = value.decode()
    except UnicodeDecodeError:
        text = repr(value)
    else:
        text = repr(text) if text.isprintable() else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _name(name: bytes) -> str:
    return name.decode(errors="backslashreplace")[:MAX_VALUE]


def describe(fields: Mapping[bytes, bytes]) -> Payload:
    """The entry in one line, and its owner when it names one."""
    payload: Payload | None = None
    rest = []
    for name, value in fields.items():
        describer = DESCRIBERS.get(name)
        if describer is not None and payload is None:
            try:
                payload = describer(value)
                continue
            except msgspec.DecodeError as exc:
                rest.append(f"{_name(name)} does not decode ({str(exc)[:MAX_VALUE]})")
        rest.append(f"{_name(name)}={shown(value)}")
    if payload is None:
        payload = Payload("unknown", "")
    summary = "; ".join(part for part in (payload.summary, *rest) if part) or "(no fields)"
    if len(summary) > MAX_SUMMARY:
        summary = summary[: MAX_SUMMARY - 1] + "…"
    return msgspec.structs.replace(payload, summary=summary)
