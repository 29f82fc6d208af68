"""The capacity model on paper (``bench.capacity``): its arithmetic on made-up figures,
and ``docs/capacity.md`` holding exactly what the model makes of the run it cites."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from bench.capacity import main, markdown, model

DOCS = Path(__file__).parent.parent / "docs"


def figure(name: str, crmd: float, limit: float | None, ratio: float | None = None, **detail):
    return {"name": name, "crmd": crmd, "limit": limit, "ratio": ratio, "detail": detail}


RESULTS = {
    "when": "2026-12-07T12:00:00+00:00",
    "mode": "full",
    "figures": [
        figure(
            "end-to-end ingestion (POST until persisted)",
            900.0,
            1_500.0,
            cpu_us_per_item=100.0,
            writes_per_item=1.0,
        ),
        figure(
            "dispatch, 100,000 recipients, no-op vendor (POST until sent)",
            800.0,
            2_000.0,
            cpu_us_per_item=250.0,
            writes_per_item=2.0,
        ),
        figure(
            "  one per post: reconciled until the stats are exact",
            300.0,
            1_000.0,
            cpu_us_per_item=2_000.0,
            writes_per_item=1.0,
        ),
        figure("receipts, 10,000 one per post: accepted", 1_500.0, 1_000.0),  # no CPU: left out
        figure("crmd peak RSS during the campaign (MB)", 115.4, 250.0),
        figure(
            "scaling: dispatch, no-op vendor (POST until sent), 1 worker process",
            1_000.0,
            1_000.0,
            1.0,
        ),
        figure(
            "scaling: dispatch, no-op vendor (POST until sent), 2 worker processes",
            900.0,
            1_000.0,
            0.9,
        ),
    ],
}


def test_one_worker_does_a_cores_worth_and_a_database_feeds_its_rate_over_the_writes():
    capacity = model(RESULTS)
    rows, messages, single = capacity.work
    assert [w.kind for w in capacity.work] == [
        "rows imported",
        "messages sent",
        "receipts, one per post",
    ]
    assert rows.per_worker == pytest.approx(10_000)  # 1e6 / 100 µs
    assert messages.per_worker == pytest.approx(4_000)
    assert single.per_worker == pytest.approx(500)
    # 20,000 writes a second: 2 importers (10k rows x 1 write), 2.5 senders (4k x 2).
    assert rows.workers_fed(20_000) == pytest.approx(2.0)
    assert messages.workers_fed(20_000) == pytest.approx(2.5)
    assert single.workers_fed(20_000) == pytest.approx(40.0)
    assert capacity.memory_mb == {"campaign": 115.4}
    assert capacity.scaling == {"dispatch, no-op vendor": [1.0, 0.9]}


def test_the_table_says_what_bounds_each_work_here():
    table = markdown(model(RESULTS), (20_000.0,))
    assert "| messages sent | 250 | 2.00 | 4,000 | 2.5 |" in table
    # 10,000 a second of CPU against 1,500 raw: the database; 500 against 1,000: crmd.
    assert "| rows imported | 900 | 1,500 | 6.7 | the database |" in table
    assert "| receipts, one per post | 300 | 1,000 | 0.5 | crmd's CPU |" in table
    assert "| dispatch, no-op vendor | 1.00 | 0.90 |" in table
    assert "| campaign | 115 |" in table
    assert "full `make bench` run of 2026-12-07T12:00:00+00:00" in table


def test_docs_capacity_holds_what_the_model_makes_of_the_run_it_cites(capsys):
    """The tables in docs/capacity.md are the model's output for the results file kept
    beside it; a new run means new tables, not edited numbers."""
    doc = (DOCS / "capacity.md").read_text()
    cited = re.search(r"`(docs/[\w.-]+\.json)`", doc)
    assert cited is not None, "docs/capacity.md names the results it is worked out from"
    path = DOCS.parent / cited.group(1)
    assert main([str(path)]) == 0
    assert capsys.readouterr().out.strip() in doc
    assert msgspec.json.decode(path.read_bytes())["mode"] in ("full", "budget")  # measured
