"""Request context, metrics and the one error path."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import msgspec
import redis.exceptions
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from crmd.errors import CrmdError
from crmd.http.describe import ErrorBody, ErrorDetail, Media, description_of, route_template
from crmd.http.keys import METRICS
from crmd.http.responses import ANSWERED, json_response
from crmd.services.connect import DEPENDENCY_ERRORS
from crmd.telemetry.logs import describe_error
from crmd.telemetry.mongo import charged_to

log = structlog.get_logger(__name__)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # fullmatch: $ allows a final "\n"
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


def error_response(status: int, code: str, message: str, details: Any = None) -> web.Response:
    return json_response(ErrorBody(ErrorDetail(code, message, details)), status=status)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id (the caller's X-Request-ID when sane), log with it and
    echo it back."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        response = await handler(request)
        response.headers["X-Request-ID"] = request_id
        return response


@web.middleware
async def metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    route = route_template(request, "unmatched")
    try:
        with charged_to(f"{request.method} {route}"):
            response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        registry = request.app[METRICS]
        registry.requests.labels(request.method, route, str(status)).inc()
        registry.latency.labels(request.method, route).observe(time.perf_counter() - started)


RETRY_AFTER_SECONDS = 5


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as ``{"error": {"code", "message", "details"?}}``."""
    try:
        return await handler(request)
    except CrmdError as exc:
        response = json_response(msgspec.convert(exc.body(), ErrorBody), status=exc.status)
        retry_after = exc.retry_after or (RETRY_AFTER_SECONDS if exc.status == 503 else None)
        if retry_after:
            response.headers["Retry-After"] = str(retry_after)
        return response
    except DEPENDENCY_ERRORS as exc:
        which = "Redis" if isinstance(exc, redis.exceptions.RedisError) else "MongoDB"
        log.warning("http.dependency_down", dependency=which, error=describe_error(exc))
        response = error_response(503, "unavailable", f"{which} is unreachable; try again shortly")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _STATUS_CODES.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except RequestPayloadError as exc:  # a body that cannot be decoded (bad gzip...)
        response = error_response(
            400,
            "bad_body",
            f"the request body could not be read: {' '.join(str(exc).split())[:200]}",
        )
        response.force_close()  # the rest of it cannot be read either
        return response
    except Exception:
        log.exception("http.unhandled", method=request.method, path=request.path)
        return error_response(500, "internal_error", "internal error; see the server log")


class UndeclaredAnswer(Exception):
    """A route answered what its ``@described`` does not declare: a bug, answered 500."""


@web.middleware
async def declared_answers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A described route's success is one its description declares: the status, and the
    Struct it was encoded from (or a body of a declared media type). What the API's
    document says is what the code does, or the request fails loudly."""
    response = await handler(request)
    operation = description_of(request.match_info.handler)
    if operation is None or response.status >= 400:
        return response
    if response.status not in operation.responses:
        raise UndeclaredAnswer(f"{request.method} {request.path} answered {response.status}")
    declared = operation.responses[response.status]
    answered = response.get(ANSWERED)
    if answered is None:  # not encoded here: a stream, a file, an original client's shape
        return response
    allowed = (
        declared if isinstance(declared, tuple) and not isinstance(declared, Media) else (declared,)
    )
    if not any(isinstance(a, type) and issubclass(answered, a) for a in allowed):
        raise UndeclaredAnswer(
            f"{request.method} {request.path} answered a {answered.__name__} with "
            f"{response.status}, not what it declares"
        )
    return response
