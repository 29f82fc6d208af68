"""What a stream entry says, in words: for an operator looking at a dead letter.

Pure: the entry's fields in, a ``Payload`` out. Each of crmd's streams carries one
msgpack field (``chunk`` on ingest, ``job`` on dispatch, ``receipts`` on receipts); it is
decoded by the describer its domain gives for it and summed up in a line. Anything else (a field
crmd does not know, a value that does not decode) is shown as a bounded repr, so a
hostile or huge entry cannot flood a terminal or a response.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec

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


Describer = Callable[[bytes], Payload]
"""A stream's field value in words; raises ``msgspec.DecodeError`` when it does not decode.
Each domain writes the one for its own stream, and the composition root hands them here
(``crmd.app.dead_letter_describers``): the stream machinery knows no domain."""


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


def describe(fields: Mapping[bytes, bytes], describers: Mapping[bytes, Describer]) -> Payload:
    """The entry in one line, and its owner when it names one: the first field that
    ``describers`` knows, by its describer, and the rest as bounded reprs."""
    payload: Payload | None = None
    rest = []
    for name, value in fields.items():
        describer = describers.get(name)
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
