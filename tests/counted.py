"""What crmd has asked of MongoDB so far, from its own command counter (``/metrics``)."""

from __future__ import annotations

from crmd.app import Crmd


def commands(system: Crmd, collection: str | None = None) -> dict[str, float]:
    """Commands sent, by name (to ``collection`` only, if given)."""
    counted: dict[str, float] = {}
    for metric in system.metrics.mongo_commands.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and collection in (
                None,
                sample.labels["collection"],
            ):
                name = sample.labels["command"]
                counted[name] = counted.get(name, 0.0) + sample.value
    return counted


def written(system: Crmd) -> float:
    """Documents in insert, update and delete statements."""
    return sum(
        sample.value
        for metric in system.metrics.mongo_documents.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def read(system: Crmd, source: str, collection: str) -> float:
    """Documents ``source`` (a route or an actor) has read from ``collection``."""
    return sum(
        sample.value
        for metric in system.metrics.mongo_documents_read.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
        and sample.labels == {"source": source, "collection": collection}
    )
