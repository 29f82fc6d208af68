"""Structured logging: JSON lines for machines, a readable console for people.

Every line carries the actor it came from (``actor``) and, inside a request, its
``request_id``: both are context variables, so a task that binds them marks every line
it logs, including lines from libraries that use the standard ``logging`` module.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor

from crmd.config import LoggingConfig


def bind_actor(name: str) -> None:
    """Mark every line logged from the current task (and tasks it starts) with ``name``."""
    structlog.contextvars.bind_contextvars(actor=name)


def _default_actor(_: Any, __: str, event: EventDict) -> EventDict:
    event.setdefault("actor", "main")
    return event


MAX_FIELD = 8192
"""A logged value longer than this is cut: a log line never carries a whole upload row
or document, whatever an error message quotes."""


def describe_error(exc: BaseException, limit: int = 500) -> str:
    """The error as a log line or a stored reason may carry it: a database write error
    by its codes and messages, without the documents pymongo quotes in it."""
    details = getattr(exc, "details", None)
    if isinstance(details, dict) and isinstance(details.get("writeErrors"), list):
        errors = details["writeErrors"]
        first = errors[0] if errors else {}
        text = (
            f"{type(exc).__name__}: {len(errors)} write error(s); first: code "
            f"{first.get('code')}: {first.get('errmsg', '')}"
        )
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:limit]


def _without_documents(_: Any, __: str, event: EventDict) -> EventDict:
    """pymongo's write errors quote the documents they could not write (customer data):
    drop the quotes before the traceback is formatted."""
    exc_info = event.get("exc_info")
    exc = exc_info if isinstance(exc_info, BaseException) else None
    if exc_info is True:
        exc = sys.exc_info()[1]
    elif isinstance(exc_info, tuple):
        exc = exc_info[1]
    details = getattr(exc, "details", None)
    if isinstance(details, dict):
        for error in details.get("writeErrors") or []:
            if isinstance(error, dict):
                error.pop("op", None)
    return event


def _bounded(_: Any, __: str, event: EventDict) -> EventDict:
    for key, value in event.items():
        if isinstance(value, str) and len(value) > MAX_FIELD:
            event[key] = f"{value[:MAX_FIELD]}... ({len(value) - MAX_FIELD} more characters)"
    return event


def configure_logging(config: LoggingConfig, stream: TextIO | None = None) -> None:
    """Route structlog and the standard library's logging through one renderer."""
    stream = stream or sys.stdout
    console = config.format == "console" or (config.format == "auto" and stream.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _default_actor,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        _without_documents,
    ]
    if not console:
        shared.append(structlog.processors.format_exc_info)
    shared.append(_bounded)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.level.upper())
    # Chatty libraries: their debug lines would bury crmd's own events.
    for noisy in ("pymongo", "asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
