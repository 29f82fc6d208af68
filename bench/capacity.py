"""What one crmd worker process does a second, and how many a database can feed: a model
on paper from a ``make bench`` run's ``results.json`` (``docs/capacity.md``).

    python -m bench.capacity bench/results.json [--writes-per-second 20000 100000]

Each kind of work has crmd's own CPU per item and the documents it writes per item, both
measured by the bench over the whole of a phase. One worker process runs one event loop,
so it does at most one core's worth: ``1e6 / cpu_us`` items a second. It asks the
database for ``writes`` documents per item, so a database that writes ``W`` documents a
second feeds ``W / (writes x items a second)`` such workers before it is the bottleneck.
The model leaves out what a worker waits for (the database's answers): a worker is then
busy less than a core's worth, and more workers per core help, up to the database.

Checked against the bench's own scaling figure: on its machine the raw insert is far
below one worker's CPU rate, so the model says more workers cannot help there, and the
measured speed-up with 2 and 3 workers says whether that holds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import msgspec

WORK = (
    ("rows imported", "end-to-end ingestion (POST until persisted)"),
    ("messages sent", "dispatch, "),
    ("receipts, posts of 1,000", "  posts of 1,000: reconciled until the stats are exact"),
    ("receipts, one per post", "  one per post: reconciled until the stats are exact"),
)
"""Each kind of work and the start of the bench figure that measures it."""
MEASURED = ("cpu_us_per_item", "writes_per_item")
MEMORY = "crmd peak RSS during the "
DATABASES = (5_000.0, 20_000.0, 100_000.0)
"""Write rates (documents a second) the table is worked out for, unless told others: a
small replica set, a large one, a sharded cluster. Inputs, not measurements: put your
own database's in."""


class Work(msgspec.Struct, frozen=True):
    kind: str
    cpu_us: float
    """crmd's CPU per item (user + system)."""
    writes: float
    """Documents written per item."""
    measured: float
    """Items a second in the bench, on its machine and database."""
    limit: float
    """The database's raw rate for the same writes, in the same run."""

    @property
    def per_worker(self) -> float:
        """Items a second one worker process does at one core's worth of CPU."""
        return 1e6 / self.cpu_us

    def workers_fed(self, writes_per_second: float) -> float:
        """Worker processes, each at ``per_worker``, a database writing
        ``writes_per_second`` documents keeps busy."""
        return writes_per_second / (self.writes * self.per_worker)


class Capacity(msgspec.Struct, frozen=True):
    when: str
    mode: str
    work: list[Work]
    memory_mb: dict[str, float]
    scaling: dict[str, list[float]]
    """Speed-up over one worker with 1, 2 and 3 worker processes, by kind."""


def model(results: dict[str, Any]) -> Capacity:
    figures = results["figures"]
    work = []
    for kind, start in WORK:
        found = next((f for f in figures if f["name"].startswith(start)), None)
        detail = (found or {}).get("detail") or {}
        if found is None or not found["limit"] or not all(map(detail.get, MEASURED)):
            continue  # (not measured in that run, or measured without its CPU)
        work.append(
            Work(
                kind,
                detail["cpu_us_per_item"],
                detail["writes_per_item"],
                found["crmd"],
                found["limit"],
            )
        )
    memory = {
        f["name"].removeprefix(MEMORY).removesuffix(" (MB)"): f["crmd"]
        for f in figures
        if f["name"].startswith(MEMORY)
    }
    scaling: dict[str, list[float]] = {}
    for f in figures:
        if f["name"].startswith("scaling: "):
            what = f["name"].removeprefix("scaling: ").split(" (")[0]
            scaling.setdefault(what, []).append(f["ratio"])
    return Capacity(results["when"], results["mode"], work, memory, scaling)


def markdown(capacity: Capacity, databases: tuple[float, ...] = DATABASES) -> str:
    head = " | ".join(f"workers at {w:,.0f} writes/s" for w in databases)
    lines = [
        f"| work | crmd CPU µs/item | writes/item | one worker, items/s | {head} |",
        "|---|---:|---:|---:|" + "---:|" * len(databases),
    ]
    for w in capacity.work:
        fed = " | ".join(f"{w.workers_fed(d):,.1f}" for d in databases)
        lines.append(
            f"| {w.kind} | {w.cpu_us:,.0f} | {w.writes:.2f} | {w.per_worker:,.0f} | {fed} |"
        )
    lines += [
        "",
        "| work | measured here, items/s | the database's raw rate here | one worker's CPU "
        "rate ÷ raw rate | bound here by |",
        "|---|---:|---:|---:|---|",
    ]
    for w in capacity.work:
        times = w.per_worker / w.limit
        bound = "the database" if times > 1 else "crmd's CPU"
        lines.append(f"| {w.kind} | {w.measured:,.0f} | {w.limit:,.0f} | {times:,.1f} | {bound} |")
    if capacity.scaling:
        lines += ["", "| scaling measured here | 1 worker | 2 workers | 3 workers |"]
        lines.append("|---|---:|---:|---:|")
        for what, ratios in capacity.scaling.items():
            lines.append(f"| {what} | " + " | ".join(f"{r:.2f}" for r in ratios) + " |")
    if capacity.memory_mb:
        lines += ["", "| peak RSS of the process during | MB |", "|---|---:|"]
        lines += [f"| {what} | {mb:,.0f} |" for what, mb in capacity.memory_mb.items()]
    lines.append(f"\nFrom a {capacity.mode} `make bench` run of {capacity.when}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("results", type=Path, nargs="?", default=Path("bench/results.json"))
    parser.add_argument("--writes-per-second", type=float, nargs="+", default=list(DATABASES))
    args = parser.parse_args(argv)
    capacity = model(msgspec.json.decode(args.results.read_bytes()))
    sys.stdout.write(markdown(capacity, tuple(args.writes_per_second)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
