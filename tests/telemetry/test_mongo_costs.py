"""What each route and actor asks of the database, counted where it is asked: the
commands by name, collection and source, and the documents read."""

from __future__ import annotations

from typing import Any

from crmd.app import Crmd
from crmd.store.numbering import reserve
from tests.ingest.conftest import upload, wait_done


def charged(system: Crmd, source: str) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
    """(commands by (command, collection), documents read by collection) of ``source``."""
    commands: dict[tuple[str, str], float] = {}
    for metric in system.metrics.mongo_commands.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels["source"] == source:
                key = (sample.labels["command"], sample.labels["collection"])
                commands[key] = commands.get(key, 0.0) + sample.value
    read: dict[str, float] = {}
    for metric in system.metrics.mongo_documents_read.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels["source"] == source:
                read[sample.labels["collection"]] = sample.value
    return commands, read


async def test_a_page_is_charged_to_its_route_and_reads_about_a_page(
    client: Any, auth: Any, ingesting: Any, system: Crmd
):
    rows = "customer_external_id,name,email\n" + "".join(
        f"P{i},Name {i},p{i}@example.com\n" for i in range(600)
    )
    job = await wait_done(
        client, auth, (await (await upload(client, auth, "customers", rows)).json())["uploadId"]
    )
    assert job["status"] == "done"
    inserted, _ = charged(system, "ingest")
    assert inserted[("insert", "customers")] >= 2  # two chunks of new rows

    route = "GET /api/v1/customers"
    before_commands, before_read = charged(system, route)
    page = await (await client.get("/api/v1/customers?limit=20", headers=auth)).json()
    assert len(page["items"]) == 20 and page["total"] == 600
    commands, read = charged(system, route)
    assert (
        commands.get(("find", "customers"), 0) - before_commands.get(("find", "customers"), 0) == 1
    )
    # One range of numbers under the newest: a few dozen records, never the 600.
    assert 20 <= read["customers"] - before_read.get("customers", 0) <= 64
    assert not any(key[1] == "customers" and key[0] in ("count", "aggregate") for key in commands)


async def test_numbers_an_import_has_taken_and_not_yet_written_cost_a_page_nothing(
    client: Any, auth: Any, ingesting: Any, system: Crmd
):
    rows = "customer_external_id,name,email\n" + "".join(
        f"Q{i},Name {i},q{i}@example.com\n" for i in range(600)
    )
    answer = await (await upload(client, auth, "customers", rows)).json()
    assert (await wait_done(client, auth, answer["uploadId"]))["status"] == "done"
    me = await (await client.get("/api/v1/user/me", headers=auth)).json()
    await reserve(system.db, me["user"]["id"], "customers", 500)  # a chunk being written
    route = "GET /api/v1/customers"
    _, before = charged(system, route)
    page = await (await client.get("/api/v1/customers?limit=20", headers=auth)).json()
    assert [c["customer_external_id"] for c in page["items"][:2]] == ["Q599", "Q598"]
    _, after = charged(system, route)
    assert after["customers"] - before.get("customers", 0) == 21  # the page, and one more
