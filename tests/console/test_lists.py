"""Lists and records read as a person expects: "1-3 of 3 customers", money in the
configured currency (``[console] currency``), a day with no "00:00 UTC", orders that
name their customer, and custom attributes under their columns' names with one date
format."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from crmd.config import Config, ConfigError, load_config
from crmd.console.formats import attribute_label, attribute_value, excerpt, money, when
from crmd.services.embedded import Urls
from crmd.testing.servers import make_test_config
from tests.console.test_security import signed_in
from tests.ingest.conftest import upload, wait_done

CUSTOMERS = (
    "customer_external_id,name,email,spend,lastActive,Loyalty Tier,Joined On\n"
    "L1,Lena Lister,lena@example.com,1234.5,2024-03-09,gold,2021-07-04\n"
    "L2,Lars Lister,lars@example.com,20,2024-03-10T14:30:00Z,silver,04/07/2021\n"
    "L3,Lily Lister,lily@example.com,0,,bronze,\n"
)
ORDERS = (
    "order_external_id,customer_external_id,amount,items,orderDate\nO-1,L1,99.9,pen,2024-05-02\n"
)


@pytest.fixture
def config(services: Urls, port: int, vendor_settings: dict[str, Any]) -> Config:
    return make_test_config(
        services,
        server={"port": port},
        plugins={"dummy_vendor": vendor_settings},
        console={"currency": "EUR"},
    )


async def test_lists_and_records_read_well(client: Any, auth: Any, ingesting: Any):
    for kind, text in (("customers", CUSTOMERS), ("orders", ORDERS)):
        answer = await (await upload(client, auth, kind, text)).json()
        assert (await wait_done(client, auth, answer["uploadId"]))["status"] == "done"
    await signed_in(client, "ops@example.com")  # the user `auth` signed in as

    customers = await (await client.get("/customers")).text()
    assert "1\u20133 of 3 customers" in customers
    assert "€1,234.50" in customers and "€20.00" in customers
    assert ">2024-03-09<" in customers  # a day, without a time
    assert "2024-03-10 14:30 UTC" in customers
    assert "00:00 UTC" not in customers

    orders = await (await client.get("/orders")).text()
    assert "1\u20131 of 1 orders" in orders
    assert re.search(r'<a href="/customers/[0-9a-f]{24}">Lena Lister</a>', orders)
    assert "€99.90" in orders and ">2024-05-02<" in orders and "00:00 UTC" not in orders

    lena = re.search(r'<a href="(/customers/[0-9a-f]{24})">Lena Lister</a>', customers)
    lars = re.search(r'<a href="(/customers/[0-9a-f]{24})">Lars Lister</a>', customers)
    assert lena and lars
    page = await (await client.get(lena.group(1))).text()
    assert re.search(
        r"<dt>Loyalty tier <code[^>]*>attrs\.loyalty_tier</code></dt><dd>gold</dd>", page
    )
    assert re.search(
        r"<dt>Joined on <code[^>]*>attrs\.joined_on</code></dt><dd>2021-07-04</dd>", page
    )
    page = await (await client.get(lars.group(1))).text()  # day first, as the file had it
    assert re.search(r"attrs\.joined_on</code></dt><dd>2021-07-04</dd>", page)


def test_money_is_in_the_configured_currency():
    assert money(1234.5, "INR") == "₹1,234.50"
    assert money("-3", "USD") == "-$3.00"
    assert money(7, "CHF") == "CHF 7.00"
    assert money(None, "EUR") == "-"
    assert money("lots", "EUR") == "lots"


def test_a_currency_is_an_iso_code():
    plain = {("auth", "google_login"): False}
    assert load_config(None, environ={}, overrides=plain, search=False).config.console.currency == (
        "INR"
    )
    euro = {**plain, ("console", "currency"): "euro"}
    with pytest.raises(ConfigError, match=r"console\.currency"):
        load_config(None, environ={}, overrides=euro, search=False)


def test_one_date_format():
    assert when(datetime(2024, 5, 2, tzinfo=UTC)) == "2024-05-02"
    assert when(datetime(2024, 5, 2, 9, 5)) == "2024-05-02 09:05 UTC"
    assert when(date(2024, 5, 2)) == "2024-05-02"
    assert when("2024-05-02T10:00:00+02:00") == "2024-05-02 08:00 UTC"
    assert when("soon") == "soon"
    assert when(None) == ""
    assert attribute_value("2021-07-04T00:00:00") == "2021-07-04"
    assert attribute_value("04/07/2021") == "2021-07-04"
    assert attribute_value("31/02/2021") == "31/02/2021"  # no such day: as it was
    assert attribute_value("gold") == "gold"
    assert attribute_value(datetime(2021, 7, 4, tzinfo=UTC)) == "2021-07-04"
    assert attribute_label("loyalty_tier") == "Loyalty tier"


def test_an_excerpt_is_short_and_has_no_links():
    text = "Hi Lena, 20% off today\n\nUnsubscribe: https://crm.example/u/" + "x" * 150
    assert excerpt(text) == "Hi Lena, 20% off today"
    assert len(excerpt("word " * 40)) <= 60 and excerpt("word " * 40).endswith("…")


async def test_numbered_pages_reach_every_record_when_some_are_deleted(client: Any, auth: Any):
    """Deleted records leave their numbers unused: the pages still show each record
    once, and the last page reaches the oldest."""
    emails = [f"s{i:03d}@example.com" for i in range(1, 201)]  # numbered 1 to 200
    for start in range(0, 200, 50):  # in order, so s001 is number 1
        added = await client.post(
            "/api/v1/suppressions",
            data="email\n" + "\n".join(emails[start : start + 50]) + "\n",
            headers={**auth, "Content-Type": "text/csv"},
        )
        assert added.status == 200, await added.text()
    gone = {e for i, e in enumerate(emails, 1) if i > 100 and i % 2 == 0}
    for email in gone:
        assert (await client.delete(f"/api/v1/suppressions/{email}", headers=auth)).status == 204
    await signed_in(client, "ops@example.com")
    pages = []
    for number in (1, 2, 3):
        page = await (await client.get(f"/suppressions?page={number}")).text()
        pages.append(set(re.findall(r"s\d{3}@example\.com", page)))
    assert [len(p) for p in pages] == [50, 50, 50]  # none shown twice...
    assert set().union(*pages) == set(emails) - gone  # ...and none left out
    last = await (await client.get("/suppressions?page=3")).text()
    assert "101\u2013150 of 150 addresses" in last and "s001@example.com" in last
