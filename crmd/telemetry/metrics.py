"""Prometheus metrics, kept in a registry of their own per runtime (no module globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "crmd_http_requests", "HTTP requests served", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "crmd_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.actor_restarts = Counter(
            "crmd_actor_restarts", "Times the supervisor restarted an actor", ["actor"], registry=r
        )
        self.actor_up = Gauge("crmd_actor_up", "1 while an actor is healthy", ["actor"], registry=r)
        self.stream_length = Gauge(
            "crmd_stream_length", "Entries in a stream (XLEN)", ["stream"], registry=r
        )
        self.stream_pending = Gauge(
            "crmd_stream_pending",
            "Entries delivered to a consumer group and not yet acknowledged",
            ["stream", "group"],
            registry=r,
        )
        self.stream_lag = Gauge(
            "crmd_stream_lag",
            "Entries not yet delivered to a consumer group: exact on Redis 7+, "
            "on Redis 6.2 an upper bound (length minus pending)",
            ["stream", "group"],
            registry=r,
        )
        self.stream_entries = Counter(
            "crmd_stream_entries",
            "Stream entries handled, by outcome (acked, retried, dead)",
            ["stream", "outcome"],
            registry=r,
        )

        self.receipts = Counter(
            "crmd_receipts",
            "Receipt events by vendor and outcome "
            "(accepted, rejected, unknown, unnamed, test_send)",
            ["vendor", "outcome"],
            registry=r,
        )
        self.bounce_mails = Counter(
            "crmd_bounce_mails",
            "Mails the bounces listener received, by outcome: queued, or why dropped "
            "(not_a_report, broken, no_outcome, not_a_complaint, unknown_message, forged, "
            "too_large, error)",
            ["outcome"],
            registry=r,
        )

        self.tracking = Counter(
            "crmd_tracking",
            "Clicks (c) and opens (o) by outcome (queued, refused, lost)",
            ["kind", "outcome"],
            registry=r,
        )

        self.mongo_commands = Counter(
            "crmd_mongo_commands",
            "Commands sent to MongoDB, by command name, collection and source (the route "
            "or actor that asked)",
            ["command", "collection", "source"],
            registry=r,
        )
        self.mongo_documents = Counter(
            "crmd_mongo_documents",
            "Documents in MongoDB write commands, by collection and operation",
            ["collection", "op"],
            registry=r,
        )
        self.mongo_seconds = Counter(
            "crmd_mongo_seconds",
            "Time MongoDB took to answer commands (round trip), by source and command",
            ["source", "command"],
            registry=r,
        )
        self.mongo_documents_read = Counter(
            "crmd_mongo_documents_read",
            "Documents MongoDB answered to reads (find, aggregate, getMore), by collection "
            "and source",
            ["collection", "source"],
            registry=r,
        )

        self.read_slots_in_use = Gauge(
            "crmd_read_slots_in_use", "Expensive reads running now (all users)", registry=r
        )
        self.read_waiting = Gauge(
            "crmd_read_waiting", "Expensive reads waiting for a slot", registry=r
        )
        self.read_wait = Histogram(
            "crmd_read_wait_seconds",
            "How long expensive reads waited for a slot (refused ones included)",
            registry=r,
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.reads_refused = Counter(
            "crmd_reads_refused",
            "Expensive reads answered 429, by whose slots were full (user, server)",
            ["full"],
            registry=r,
        )
        self.counts_waiting = Gauge(
            "crmd_counts_waiting", "Rules being counted in the background, all users", registry=r
        )
        self.count_wait = Histogram(
            "crmd_count_slot_wait_seconds",
            "How long a run of audience counting waited for the database (count_slots)",
            registry=r,
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.flow_timer_lag = Histogram(
            "crmd_flow_timer_lag_seconds",
            "How late a flow's wait ended: handed to the engine less its due time",
            registry=r,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
        )
        self.flow_steps = Counter(
            "crmd_flow_steps", "Flow steps run, by kind", ["kind"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
