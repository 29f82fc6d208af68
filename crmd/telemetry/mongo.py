"""What crmd asks of MongoDB, counted: commands by name, and documents by collection
and operation (insert, update, delete), from a PyMongo command listener. ``/metrics``
shows them, so anyone can check what a request or an import costs the database."""

from __future__ import annotations

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


class CommandCounter(monitoring.CommandListener):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name in _SKIPPED:
            return
        self.metrics.mongo_commands.labels(name).inc()
        write = _WRITES.get(name)
        if write is not None:
            op, field = write
            documents = _count(event.command.get(field))
            self.metrics.mongo_documents.labels(str(event.command.get(name)), op).inc(documents)
        elif name == "findAndModify":
            op = "delete" if event.command.get("remove") else "update"
            self.metrics.mongo_documents.labels(str(event.command.get(name)), op).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


def _count(items: Any) -> int:
    try:
        return len(items)
    except TypeError:  # a generator in a bulk write: counted as one batch
        return 1
