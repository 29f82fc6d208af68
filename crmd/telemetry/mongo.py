"""What crmd asks of MongoDB, counted by a PyMongo command listener: commands by name,
collection and source (the route or the actor that asked), the time the database took
to answer them by source, documents written by collection and operation (insert,
update, delete), and documents read by collection and source. ``/metrics`` shows them,
so anyone can check what a request, a page or an import costs the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pymongo import monitoring

from crmd.telemetry.metrics import Metrics

# command -> (the operation it counts as, the field listing its documents)
_WRITES = {
    "insert": ("insert", "documents"),
    "update": ("update", "updates"),
    "delete": ("delete", "deletes"),
}
_SKIPPED = frozenset(
    {
        "hello",
        "ismaster",
        "isMaster",
        "ping",
        "endSessions",
        "saslStart",
        "saslContinue",
        "buildInfo",
    }
)
_CURSORS = frozenset({"find", "aggregate", "getMore"})

_SOURCE: ContextVar[str] = ContextVar("crmd_mongo_source", default="other")
"""Who the commands of the current task are asked for: ``GET /api/v1/customers``, an
actor's name, or ``other``. A context variable (like structlog's), so tasks a request
or an actor starts are charged to it too."""


@contextmanager
def charged_to(source: str) -> Iterator[None]:
    """Count the database commands of this block (and the tasks it starts) as
    ``source``'s."""
    token = _SOURCE.set(source)
    try:
        yield
    finally:
        _SOURCE.reset(token)


def charge_task_to(source: str) -> None:
    """Count the rest of this task's database commands as ``source``'s (an actor's
    task, for its whole life)."""
    _SOURCE.set(source)


class CommandCounter(monitoring.CommandListener):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in _SKIPPED:
            return
        self.metrics.mongo_commands.labels(name, _collection(event), _SOURCE.get()).inc()
        write = _WRITES.get(name)
        if write is not None:
            op, field = write
            documents = _count(event.command.get(field))
            self.metrics.mongo_documents.labels(str(event.command.get(name)), op).inc(documents)
        elif name == "findAndModify":
            op = "delete" if event.command.get("remove") else "update"
            self.metrics.mongo_documents.labels(str(event.command.get(name)), op).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._took(event)
        if event.command_name not in _CURSORS:
            return
        cursor = event.reply.get("cursor")
        if not isinstance(cursor, dict):
            return
        batch = cursor.get("firstBatch", cursor.get("nextBatch"))
        if batch:
            collection = str(cursor.get("ns", "")).partition(".")[2] or "?"
            self.metrics.mongo_documents_read.labels(collection, _SOURCE.get()).inc(len(batch))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._took(event)

    def _took(
        self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent
    ) -> None:
        if event.command_name not in _SKIPPED:
            seconds = event.duration_micros / 1e6
            self.metrics.mongo_seconds.labels(_SOURCE.get(), event.command_name).inc(seconds)


def _collection(event: monitoring.CommandStartedEvent) -> str:
    """The collection a command names (``getMore`` names it in a field of its own)."""
    named = event.command.get(
        "collection" if event.command_name == "getMore" else event.command_name
    )
    return named if isinstance(named, str) else ""


def _count(items: Any) -> int:
    try:
        return len(items)
    except TypeError:  # a generator in a bulk write: counted as one batch
        return 1
