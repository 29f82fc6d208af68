"""JSON out: msgspec encodes dates as ISO 8601 and ObjectIds as their hex.

The API answers only Structs (``json_response``): each is declared in the OpenAPI
document by the route that answers it, so what a client reads is what the document
says. ``plain_json`` is for the console's own page scripts and the original clients'
reshaped answers, which the API's document does not describe as crmd's shapes."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web
from bson import ObjectId


def _extra(value: Any) -> Any:
    if isinstance(value, ObjectId):
        return str(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_encode = msgspec.json.Encoder(enc_hook=_extra).encode
ANSWERED: web.ResponseKey[type] = web.ResponseKey("crmd_answered", type)
"""The Struct type a response was encoded from (``declared_answers`` checks it)."""


def json_response(data: msgspec.Struct, status: int = 200) -> web.Response:
    if not isinstance(data, msgspec.Struct):
        raise TypeError(f"the API answers a declared Struct, not a {type(data).__name__}")
    response = web.Response(body=_encode(data), status=status, content_type="application/json")
    response[ANSWERED] = type(data)
    return response


def secret_json(data: msgspec.Struct, status: int = 200) -> web.Response:
    """An answer holding a secret shown once (a key, an invitation's link): no cache,
    proxy or browser history keeps it."""
    response = json_response(data, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def plain_json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(data), status=status, content_type="application/json")
