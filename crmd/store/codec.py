"""Documents to Structs and back: ``decode`` reads what the driver gives as a Struct,
``encode`` writes a Struct as the document to insert, by the names its fields are
stored under (``crmd.store.documents`` defines the Structs)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import msgspec
from bson import ObjectId

D = TypeVar("D", bound=msgspec.Struct)
Doc = dict[str, Any]
"""A document as the driver gives it, before ``decode``; a filter, an update, a
projection. The one alias: what is read is decoded into the Structs below."""


def decode(doc: Mapping[str, Any], kind: type[D]) -> D:
    """``doc`` as read from MongoDB, as a ``kind``. BSON's own values (ObjectId, an
    aware datetime) are taken as they are."""
    return msgspec.convert(doc, kind, dec_hook=_bson)


def decode_all(docs: Iterable[Mapping[str, Any]], kind: type[D]) -> list[D]:
    return [decode(doc, kind) for doc in docs]


@functools.cache
def field_names(kind: type[msgspec.Struct]) -> tuple[tuple[str, str], ...]:
    """``kind``'s (attribute, stored name) pairs, worked out once: msgspec reads them
    from the annotations on every call (most of a message's CPU, uncached)."""
    return tuple((f.name, f.encode_name) for f in msgspec.structs.fields(kind))


def encode(doc: msgspec.Struct) -> dict[str, Any]:
    """``doc`` as the document to insert: its fields by their stored names, nested
    Structs as documents, BSON's own values (ObjectId, datetime) kept as they are."""
    encoded = {}
    for name, stored in field_names(type(doc)):
        value = getattr(doc, name)
        if value is not msgspec.UNSET:
            encoded[stored] = _encoded(value)
    return encoded


def _encoded(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return encode(value)
    if isinstance(value, list):
        return [_encoded(v) for v in value]
    if isinstance(value, dict):
        return {k: _encoded(v) for k, v in value.items()}
    return value


def projection(kind: type[msgspec.Struct]) -> dict[str, int]:
    """A projection that reads the fields ``kind`` names, and no others."""
    return dict.fromkeys((stored for _, stored in field_names(kind)), 1)


def _bson(kind: type, value: Any) -> Any:
    if kind is ObjectId and isinstance(value, ObjectId):
        return value
    raise NotImplementedError(f"no {kind.__name__} from {type(value).__name__}")
