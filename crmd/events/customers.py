"""Finding the customers events name, and making the ones not found when the setting
says so (``[events] unknown_customer = "create"``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from crmd.emails import InvalidEmail, normalise_email
from crmd.ingest.persist import NO_ORDERS, record_fields, record_id, write_versioned
from crmd.ingest.rows import CustomerRow
from crmd.store.reads import find_in
from crmd.store.tenant import TenantStore


class Found(NamedTuple):
    id: str
    """The customer's crmd id (``_id``)."""
    n: int


def _email(text: str) -> str | None:
    if "@" not in text:
        return None
    try:
        return normalise_email(text)
    except InvalidEmail:
        return None


async def find_customers(store: TenantStore, names: Iterable[str]) -> dict[str, Found]:
    """Each name's customer: by external id, else by e-mail, else by crmd id; a name
    with none is left out. Three indexed lookups at most, whatever the batch."""
    left = set(names)
    found: dict[str, Found] = {}
    customers = store["customers"]
    projection = {"_id": 1, "n": 1, "customer_external_id": 1, "email": 1}
    async for doc in find_in(customers, "customer_external_id", sorted(left), None, projection):
        found[doc["customer_external_id"]] = Found(str(doc["_id"]), doc.get("n", 0))
    left -= set(found)
    emails = {e: name for name in left if (e := _email(name))}
    by_email: dict[str, Found] = {}
    async for doc in find_in(customers, "email", sorted(emails), None, projection):
        mine = Found(str(doc["_id"]), doc.get("n", 0))
        earlier = by_email.get(doc["email"])
        # Several customers may share an address: the first to arrive answers for it.
        if earlier is None or mine.n < earlier.n:
            by_email[doc["email"]] = mine
    for email, name in emails.items():
        if email in by_email:
            found[name] = by_email[email]
    left -= set(found)
    if left:
        for doc in await customers.by_ids(sorted(left), projection={"n": 1}):
            found[str(doc["_id"])] = Found(str(doc["_id"]), doc.get("n", 0))
    return found


async def create_customers(store: TenantStore, names: Iterable[str]) -> dict[str, Found]:
    """A customer for each name: with that e-mail when it is an address, else with that
    external id. Made with the oldest version there is, so any upload of the customer
    afterwards writes over it; made once, however many requests race to make it."""
    rows = {}
    for name in sorted(set(names)):
        email = _email(name)
        row = (
            CustomerRow(line=0, name="", email=email)
            if email
            else CustomerRow(line=0, name="", email="", customer_external_id=name)
        )
        rows[name] = (record_id(store.user_id, "customer", row.key), row)
    records = [(_id, "", {**record_fields(row), **NO_ORDERS}) for _id, row in rows.values()]
    await write_versioned(store, "customers", records, "")
    made = await store["customers"].by_ids([r[0] for r in records], projection={"n": 1})
    numbers = {d["_id"]: d.get("n", 0) for d in made}
    return {name: Found(_id, numbers.get(_id, 0)) for name, (_id, _) in rows.items()}
