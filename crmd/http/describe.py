"""How a route describes itself for the API's OpenAPI document: ``@described`` on the
handler, next to the code it describes.

The description names types, never schemas written by hand: the Structs that decode a
request (its body, its query, its headers) and the Structs its answers are encoded
from. ``crmd.http.openapi`` turns them into JSON Schema with msgspec, so the document
cannot say one thing while the code does another. A body that is not JSON (a CSV file,
a multipart form, a Prometheus page) is a ``Media``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple

import msgspec

if TYPE_CHECKING:
    from aiohttp import web

DESCRIPTION = "__crmd_api__"
PUBLIC = "__crmd_public__"
"""Set on a handler that needs no token (``crmd.auth.requests.public``, and
``@described`` with any ``auth`` but ``token``): the one fact the authentication
middleware and the document both read."""
Auth = Literal["token", "public", "receipt"]
"""``token``: a signed-in caller (``Authorization: Bearer`` or the original clients'
``x-access-token``); ``public``: anyone; ``receipt``: a vendor, whose signature headers
its plugin verifies."""


class Media(NamedTuple):
    """A body in another media type than JSON: its type, and what its content is."""

    type: str
    schema: Mapping[str, Any]
    description: str = ""


class Link(NamedTuple):
    """An operation that can follow this one, fed from the answer (OpenAPI links):
    ``Link("get_segment", {"id": "$response.body#/id"})``."""

    operation: str
    parameters: Mapping[str, str]


class Operation(NamedTuple):
    summary: str
    tag: str
    responses: Mapping[int, Any]
    """Each success status and what it answers: a Struct type, a ``Media``, or None
    (no body). Error statuses are in ``errors``: they all answer the error envelope."""
    body: Any = None
    """A Struct type, a ``Media``, or a tuple of them (any of which is accepted)."""
    query: type | None = None
    """A Struct whose fields are the query parameters."""
    path: type | None = None
    """A Struct whose fields are the path parameters (else each is a short string)."""
    headers: type | None = None
    """A Struct whose fields (by their encoded names) are request headers."""
    errors: tuple[int, ...] = ()
    """Error statuses beyond those every operation of its kind can answer."""
    links: Mapping[str, Link] = {}
    auth: Auth = "token"
    description: str = ""


H = Callable[..., Awaitable[Any]]
Moment = Annotated[datetime, msgspec.Meta(tz=True)]
"""A moment in an answer: always with its offset (UTC), ``format: date-time``."""


def described(
    summary: str,
    *,
    tag: str,
    ok: Mapping[int, Any] | type | Media | None,
    body: Any = None,
    query: type | None = None,
    path: type | None = None,
    headers: type | None = None,
    errors: tuple[int, ...] = (),
    links: Mapping[str, Link] | None = None,
    auth: Auth = "token",
) -> Callable[[H], H]:
    """Describe a route's handler; ``ok`` alone (not a mapping) is its 200 answer. The
    handler's docstring is the operation's description."""
    responses = ok if isinstance(ok, Mapping) else {200: ok}

    def mark(handler: H) -> H:
        operation = Operation(
            summary=summary,
            tag=tag,
            responses=responses,
            body=body,
            query=query,
            path=path,
            headers=headers,
            errors=errors,
            links=links or {},
            auth=auth,
            description=inspect.cleandoc(handler.__doc__ or ""),
        )
        setattr(handler, DESCRIPTION, operation)
        if auth != "token":
            setattr(handler, PUBLIC, True)
        return handler

    return mark


def description_of(handler: object) -> Operation | None:
    found = getattr(handler, DESCRIPTION, None)
    return found if isinstance(found, Operation) else None


class ErrorDetail(msgspec.Struct):
    code: str
    """A stable, machine-readable name: ``invalid_body``, ``not_found``, ``bad_csv``..."""
    message: str
    """What went wrong, for a person."""
    details: Any = None
    """Where: ``field`` (``$.name``, a query parameter, a header), ``line`` and
    ``column`` in a file, the ``allowed`` values...; null when there is nothing to add."""
    column: int | msgspec.UnsetType = msgspec.UNSET
    """A rule's error: the column it is at (1-based), as in ``details.column``."""


class ErrorBody(msgspec.Struct):
    """Every error crmd answers, whatever the route."""

    error: ErrorDetail


def route_template(request: web.Request, unmatched: str = "") -> str:
    """The template of the route a request matched (``/api/v1/campaigns/{id}``), the
    name its metrics, costs and the original clients' shapes go by; ``unmatched`` when
    it matched none."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else unmatched
