"""crmd's exception hierarchy. One middleware turns these into ``{"error": {...}}``."""

from __future__ import annotations

from typing import Any


class CrmdError(Exception):
    """An error the API reports to its caller as it is."""

    status = 500
    code = "internal_error"
    retry_after: int | None = None
    """Seconds, sent as ``Retry-After`` (a 503 always has one)."""

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        """``{"error": {"code", "message", "details"}}``; ``details`` is null when there
        is nothing to add (a field, a line, a column, the allowed values...)."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(CrmdError):
    status, code = 400, "bad_request"


class Unauthorized(CrmdError):
    status, code = 401, "unauthorized"


class Forbidden(CrmdError):
    status, code = 403, "forbidden"


class NotFound(CrmdError):
    status, code = 404, "not_found"


class Conflict(CrmdError):
    status, code = 409, "conflict"


class Unprocessable(CrmdError):
    status, code = 422, "invalid"


class PayloadTooLarge(CrmdError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(CrmdError):
    status, code = 415, "unsupported_media_type"


class TooManyRequests(CrmdError):
    """Slow down: ``retry_after`` says when the next request will be taken."""

    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Unavailable(CrmdError):
    status, code = 503, "unavailable"
