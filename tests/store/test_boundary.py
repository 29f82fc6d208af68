"""The store is the boundary: handlers and services ask the tenant store, never the
database behind it, so no query can leave the signed-in user's data."""

from __future__ import annotations

import re
from pathlib import Path

CRMD = Path(__file__).resolve().parents[2] / "crmd"
REACHES_DB = re.compile(r"\bstore\.db\b|(?<![\w.])self\.store\.db\b")
ANY_DB = re.compile(r"\.db\b(?!_)|\bdb\[")


def offending(paths: list[Path], pattern: re.Pattern[str]) -> list[str]:
    return [
        f"{path.relative_to(CRMD.parent)}:{n}: {line.strip()}"
        for path in paths
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]


def test_nothing_outside_the_store_reaches_a_tenant_stores_database():
    outside = [p for p in sorted(CRMD.rglob("*.py")) if "store" not in p.relative_to(CRMD).parts]
    assert len(outside) > 100
    assert offending(outside, REACHES_DB) == []


def test_routes_and_console_handlers_never_touch_a_database():
    handlers = sorted(CRMD.glob("*/routes.py")) + sorted((CRMD / "console").glob("*.py"))
    assert len(handlers) > 15
    assert offending(handlers, ANY_DB) == []


def test_the_checks_catch_a_handler_that_reaches_the_database(tmp_path: Path):
    for line in (
        "top = await highest(store.db, user, 'customers')",
        "await add_to_tally(self.store.db, self.store.user_id, 'messages', 1)",
    ):
        assert REACHES_DB.search(line), line
    for line in ("found = await request.app[DATABASE].db.customers.find_one()", "db['x']"):
        assert ANY_DB.search(line), line
    assert not ANY_DB.search("await store.highest('customers')  # dbname_x")
