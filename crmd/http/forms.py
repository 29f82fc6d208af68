"""HTML and axios forms read strictly: text fields only, bounded, each once, UTF-8."""

from __future__ import annotations

import urllib.parse
from typing import Any

from aiohttp import BodyPartReader, web

from crmd.errors import BadRequest
from crmd.http.bodies import BROKEN_FORM, broken_form, next_part

MAX_FIELDS = 48
"""The new-campaign form has 34 when every field is sent (A/B variants B to E among
them), its confirmation included."""
MAX_FIELD_BYTES = 16 * 1024


async def read_form(
    request: web.Request, nested: bool = False, max_fields: int = MAX_FIELDS
) -> dict[str, Any]:
    """A form's text fields (urlencoded or multipart): at most ``max_fields`` fields of
    at most MAX_FIELD_BYTES, each name once, all UTF-8; 400 naming the field otherwise.
    With ``nested``, ``a[b]`` is ``{"a": {"b": ...}}``, as axios sends an object. (A
    form with a row of fields per item, the flow editor's, passes its own bound.)"""
    pairs: list[tuple[str, bytes]] = []
    if request.content_type == "application/x-www-form-urlencoded":
        charset = (request.charset or "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise BadRequest(f"the form must be UTF-8, not {charset[:20]!r}", code="bad_form")
        raw = await request.read()
        for piece in raw.split(b"&"):
            if piece:
                raw_name, _, raw_value = piece.partition(b"=")
                pairs.append(
                    (
                        _unquoted(raw_name),
                        urllib.parse.unquote_to_bytes(raw_value.replace(b"+", b" ")),
                    )
                )
                if len(pairs) > max_fields:
                    raise BadRequest(
                        f"the form has more than {max_fields} fields", code="form_too_large"
                    )
    elif request.content_type == "multipart/form-data":
        try:
            form = await request.multipart()
            while (part := await next_part(form, request.content)) is not None:
                if not isinstance(part, BodyPartReader) or part.filename is not None:
                    raise BadRequest("the form may hold text fields only", code="unexpected_part")
                pairs.append((part.name or "", await part.read(decode=False)))
                if len(pairs) > max_fields:
                    raise BadRequest(
                        f"the form has more than {max_fields} fields", code="form_too_large"
                    )
        except BROKEN_FORM:
            raise broken_form() from None
    else:
        raise BadRequest(
            "send a form (application/x-www-form-urlencoded or multipart/form-data)",
            code="bad_form",
        )
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if len(value) > MAX_FIELD_BYTES:
            raise BadRequest(
                f"field {name[:60]!r} is longer than {MAX_FIELD_BYTES} bytes",
                code="form_too_large",
                details={"field": name[:60]},
            )
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(
                f"field {name[:60]!r} is not UTF-8 text",
                code="bad_form",
                details={"field": name[:60]},
            ) from None
        if nested:
            _nest(fields, name, text)
        elif name in fields:
            raise BadRequest(
                f"field {name[:60]!r} is sent twice", code="bad_form", details={"field": name[:60]}
            )
        else:
            fields[name] = text
    return fields


def _unquoted(name: bytes) -> str:
    try:
        return urllib.parse.unquote_to_bytes(name.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("a field name is not UTF-8 text", code="bad_form") from None


def _nest(fields: dict[str, Any], name: str, value: str) -> None:
    """``a`` or ``a[b]``, each once; anything deeper is refused."""
    outer, bracket, inner = name.partition("[")
    key = inner[:-1] if inner.endswith("]") else None
    if bracket and (key is None or "[" in key or "]" in key):
        raise BadRequest(
            f"field name {name[:60]!r} is not a or a[b]",
            code="bad_form",
            details={"field": name[:60]},
        )
    target = fields.setdefault(outer, {}) if key is not None else fields
    if not isinstance(target, dict) or (key if key is not None else outer) in target:
        raise BadRequest(
            f"field {name[:60]!r} is sent twice", code="bad_form", details={"field": name[:60]}
        )
    target[key if key is not None else outer] = value
