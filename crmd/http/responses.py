"""JSON out: msgspec encodes dates as ISO 8601 and ObjectIds as their hex."""

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


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(data), status=status, content_type="application/json")
