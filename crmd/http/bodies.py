"""Request bodies decoded at the edge into msgspec Structs, errors naming the field."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from aiohttp import BodyPartReader, MultipartReader, StreamReader, web
from aiohttp.http_exceptions import HttpProcessingError

from crmd.errors import BadRequest, Unprocessable
from crmd.http.schema import Body

NESTED_TOO_DEEP = "body is not valid JSON: it nests arrays or objects too deeply"
UNKNOWN_FIELD = "Object contains unknown field `"
NAME_SHOWN = 60
"""Characters of an unknown field's name that an error repeats."""
REPLACED_BODY = web.RequestKey("replaced_body", bytes)
"""A body to read instead of the request's: the compatibility layer puts an original
client's body here, rewritten into crmd's shape."""


B = TypeVar("B", bound=Body)


async def raw_body(request: web.Request) -> bytes:
    replaced = request.get(REPLACED_BODY)
    return replaced if replaced is not None else await request.read()


async def json_body(request: web.Request, schema: type[B]) -> B:
    """``schema`` from the JSON body: 400 when it is not JSON, 422 naming the field
    (``$.email``, or ``$.surprise`` for a field ``schema`` does not have) when it
    does not fit."""
    decoded: B = await _decoded(request, schema)
    return decoded


async def read_json(request: web.Request) -> Any:
    """The body as plain JSON values (no schema); 400 when it is not JSON."""
    return await _decoded(request, Any)


async def _decoded(request: web.Request, schema: Any) -> Any:
    raw = await raw_body(request)
    if not raw.strip():
        raise BadRequest("expected a JSON body", code="bad_json")
    try:
        return msgspec.json.decode(raw, type=schema)
    except msgspec.ValidationError as exc:
        raise invalid_body(exc) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="bad_json") from None
    except RecursionError:  # even in a field crmd would ignore
        raise BadRequest(NESTED_TOO_DEEP, code="bad_json") from None


def invalid_body(exc: msgspec.ValidationError) -> Unprocessable:
    """msgspec's complaint as crmd's 422, ``details.field`` saying where: msgspec's
    path (``$.items[3].email``), ending with the field itself when it is one the body
    does not have (msgspec names that in its message, at the object's path)."""
    text = str(exc)
    # The path is last; what precedes it may quote the caller's values.
    message, at, path = text.rpartition(" - at `")
    if not at:
        message, path = text, ""
    where = path.removesuffix("`") or "$"
    if message.startswith(UNKNOWN_FIELD) and message.endswith("`"):
        name = message[len(UNKNOWN_FIELD) : -1]
        name = name if len(name) <= NAME_SHOWN else name[:NAME_SHOWN] + "…"
        message, where = f"{UNKNOWN_FIELD}{name}`", f"{where}.{name}"
    return Unprocessable(message, details={"field": where}, code="invalid_body")


BROKEN_FORM = (ValueError, HttpProcessingError, AssertionError)
"""What aiohttp's multipart reader raises for a body that is not a well-formed form
(no boundary, a boundary too long, a part header without a colon, no closing boundary)."""


async def next_part(
    form: MultipartReader, body: StreamReader
) -> BodyPartReader | MultipartReader | None:
    """The form's next part (None after its closing boundary), read from ``body``;
    400 ``bad_multipart`` when the form is not well formed there.

    aiohttp takes the end of the body for the blank line that closes a part's headers,
    so a form cut inside a part's headers (or just after its boundary line) would give
    a part with what headers arrived and no content. A well-formed part is followed by
    at least a closing boundary: a body already at its end after the headers was cut."""
    try:
        part = await form.next()
    except BROKEN_FORM:
        raise broken_form() from None
    if part is not None and body.at_eof():
        raise broken_form()
    return part


async def part_chunk(part: BodyPartReader, size: int) -> bytes:
    """The part's next bytes, b"" once its boundary is reached; 400 ``bad_multipart``
    when the body ends before it (aiohttp reads that end as the end of the part)."""
    try:
        chunk = await part.read_chunk(size)
    except BROKEN_FORM:
        raise broken_form() from None
    if not chunk and not part.at_eof():
        raise broken_form()
    return chunk


def broken_form() -> BadRequest:
    return BadRequest(
        "the multipart body is not a well-formed form (a missing or overlong boundary, a "
        "broken part header, or no closing boundary: the file may be cut short)",
        code="bad_multipart",
    )
