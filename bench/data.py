"""The benchmark's data, made up on the spot and the same on every run."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

CITIES = ("Delhi", "Pune", "Mumbai", "Chennai", "Kolkata", "Jaipur", "Lucknow", "Surat")
TIERS = ("gold", "silver", "bronze", "")
FIRST = ("Asha", "Ravi", "Meera", "Arjun", "Zoya", "Kabir", "Isha", "Dev", "Nina", "Om")
LAST = ("Rao", "Shah", "Iyer", "Khan", "Das", "Gill", "Nair", "Bose", "Jain", "Sen")

# The five preview rules: a range on an indexed number, a conjunction, an age, a list
# of text values and a text match with a custom attribute.
RULES = (
    "spend > 50000",
    "spend > 10000 AND visits < 3",
    "lastActive < 90d",
    'location in ("Delhi", "Pune")',
    'name contains "ra" OR attrs.tier = "gold"',
)
EVERYONE = "visits >= 0"
"""A rule every generated customer matches: the campaign's audience."""
DATA_NOW = datetime(2026, 11, 1, tzinfo=UTC)
"""The made-up data's "now": its dates are before it."""


def write_customers(path: Path, rows: int, prefix: str, seed: int = 7) -> int:
    """A customers CSV of ``rows`` rows (ids ``<prefix><n>``); returns its size in bytes."""
    rng = random.Random(seed)  # noqa: S311 - made-up data
    now = DATA_NOW
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "customer_external_id",
                "name",
                "email",
                "phone",
                "location",
                "spend",
                "visits",
                "lastActive",
                "tier",
            ]
        )
        for n in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            active = now - timedelta(days=rng.randrange(0, 400), seconds=rng.randrange(86400))
            out.writerow(
                [
                    f"{prefix}{n}",
                    f"{first} {last}",
                    f"{first.lower()}.{n}@{prefix}.example.com",
                    f"+91{rng.randrange(7_000_000_000, 9_999_999_999)}",
                    rng.choice(CITIES),
                    f"{rng.lognormvariate(9, 1.2):.2f}",
                    rng.randrange(0, 40),
                    active.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    rng.choice(TIERS),
                ]
            )
    return path.stat().st_size


def csv_reader_seconds(path: Path) -> tuple[int, float]:
    """The upload acceptance limit: rows and seconds for ``csv.reader`` to iterate the
    file (opened and decoded as crmd decodes it: UTF-8, newlines kept in fields)."""
    from time import perf_counter

    started = perf_counter()
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
    return rows, perf_counter() - started


def write_orders(
    path: Path,
    rows: int,
    prefix: str,
    customers: int,
    seed: int = 9,
    until: datetime = DATA_NOW,
    days: int = 400,
) -> int:
    """An orders CSV of ``rows`` orders (ids ``<prefix>-o<n>``) by the customers
    ``<prefix>0`` to ``<prefix><customers - 1>``, placed over the ``days`` (and one)
    before ``until``; returns its size in bytes."""
    rng = random.Random(seed)  # noqa: S311 - made-up data
    now = until
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["order_external_id", "customer_external_id", "amount", "orderDate", "items"])
        for n in range(rows):
            placed = now - timedelta(days=rng.randrange(0, days), seconds=rng.randrange(86400))
            out.writerow(
                [
                    f"{prefix}-o{n}",
                    f"{prefix}{rng.randrange(customers)}",
                    f"{rng.lognormvariate(7, 1):.2f}",
                    placed.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    f"SKU-{rng.randrange(1, 50)}",
                ]
            )
    return path.stat().st_size
