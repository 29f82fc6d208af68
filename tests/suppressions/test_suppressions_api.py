"""``/api/v1/suppressions``: one address added as JSON, many from a CSV (each bad row
reported by line), listed a page at a time and by address, removed; every tenant's list
its own."""

from __future__ import annotations

from typing import Any

from crmd.app import Crmd
from crmd.store.tenant import TenantStore
from crmd.suppressions.entries import Entry, suppress
from tests.test_isolation import two_users  # noqa: F401 (a fixture)

URL = "/api/v1/suppressions"
IMPORT = (
    "email,reason\n"
    "bob@example.com,bounced elsewhere\n"
    "not-an-address,\n"
    "ann@example.com,\n"
    "cy@example.com,\n"
)


def post_csv(client: Any, headers: dict[str, str], text: str) -> Any:
    return client.post(URL, data=text.encode(), headers={**headers, "Content-Type": "text/csv"})


async def test_add_one_import_many_list_and_remove(client: Any, auth: dict[str, str]):
    added = await client.post(URL, headers=auth, json={"email": " Ann@X.io ", "reason": "asked"})
    assert added.status == 201
    entry = await added.json()
    assert (entry["email"], entry["reason"], entry["source"]) == ("ann@x.io", "asked", "operator")
    again = await client.post(URL, headers=auth, json={"email": "ann@x.io", "reason": "b"})
    assert again.status == 200 and (await again.json())["reason"] == "asked"  # the first stays

    imported = await post_csv(client, auth, IMPORT.replace("ann@example.com", "ann@x.io"))
    assert imported.status == 200, await imported.text()
    assert await imported.json() == {
        "received": 4,
        "added": 2,
        "existing": 1,
        "rejected": 1,
        "errors": [
            {
                "line": 3,
                "column": "email",
                "code": "invalid_email",
                "message": "email 'not-an-address' is not an email address",
            }
        ],
    }

    page = await (await client.get(URL, headers=auth, params={"limit": 2})).json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["cursor"]
    more = {"limit": 2, "cursor": page["cursor"]}
    rest = await (await client.get(URL, headers=auth, params=more)).json()
    every = [i["email"] for i in page["items"] + rest["items"]]
    assert every == ["cy@example.com", "bob@example.com", "ann@x.io"]  # newest first
    assert rest["cursor"] is None
    found = await (await client.get(URL, headers=auth, params={"email": "BOB@example.com"})).json()
    assert [(i["email"], i["source"], i["reason"]) for i in found["items"]] == [
        ("bob@example.com", "import", "bounced elsewhere")
    ]

    assert (await client.delete(f"{URL}/Bob@Example.com", headers=auth)).status == 204
    gone = await client.delete(f"{URL}/bob@example.com", headers=auth)
    assert gone.status == 404
    assert (await gone.json())["error"]["message"] == (
        "bob@example.com is not on the suppression list"
    )
    listed = await (await client.get(URL, headers=auth)).json()
    assert [i["email"] for i in listed["items"]] == ["cy@example.com", "ann@x.io"]
    assert listed["total"] == 2


async def test_bad_input_gets_a_precise_error(client: Any, auth: dict[str, str]):
    def get(**params: str) -> Any:
        return client.get(URL, headers=auth, params=params)

    def add(body: dict[str, Any]) -> Any:
        return client.post(URL, headers=auth, json=body)

    cases = [
        (add({"email": "nope"}), 422, "invalid_email", {"field": "$.email"}),
        (add({"email": "a@b.io", "why": 1}), 422, "invalid_body", {"field": "$.why"}),
        (add({"email": "a@b.io", "reason": "r" * 201}), 422, "invalid_body", {"field": "$.reason"}),
        (client.post(URL, headers=auth, data=b"email=a@b.io"), 415, "unsupported_media_type", None),
        (post_csv(client, auth, "name\nAnn\n"), 422, "missing_column", {"line": 1}),
        (post_csv(client, auth, 'email\n"a@b.io\n'), 422, "bad_csv", {"line": 2}),
        (get(cursor="x"), 400, "bad_request", {"field": "cursor"}),
        (get(limit="0"), 400, "bad_request", {"field": "limit"}),
        (get(email="a b@c.io"), 422, "invalid_email", {"field": "email"}),
        (
            client.delete(f"{URL}/no-address", headers=auth),
            422,
            "invalid_email",
            {"field": "email"},
        ),
    ]
    for request, status, code, details in cases:
        answer = await request
        body = await answer.json()
        assert (answer.status, body["error"]["code"]) == (status, code), body
        assert body["error"]["details"] == details, body
    assert (await (await client.get(URL, headers=auth)).json())["total"] == 0


async def test_each_tenant_has_a_list_of_its_own(client: Any, two_users: Any):  # noqa: F811
    alice, bob, _, _ = two_users
    assert (await client.post(URL, headers=alice, json={"email": "x@example.com"})).status == 201
    assert (await (await post_csv(client, alice, "email\ny@example.com\n")).json())["added"] == 1
    nothing = {"items": [], "total": 0, "cursor": None}
    assert await (await client.get(URL, headers=bob)).json() == nothing
    found = await (await client.get(URL, headers=bob, params={"email": "x@example.com"})).json()
    assert found["items"] == []
    assert (await client.delete(f"{URL}/x@example.com", headers=bob)).status == 404
    # Bob's own entry for the same address is his, and leaves Alice's alone.
    assert (await client.post(URL, headers=bob, json={"email": "x@example.com"})).status == 201
    assert (await client.delete(f"{URL}/x@example.com", headers=bob)).status == 204
    mine = await (await client.get(URL, headers=alice)).json()
    assert sorted(i["email"] for i in mine["items"]) == ["x@example.com", "y@example.com"]
    assert mine["total"] == 2


async def test_what_a_campaigns_failures_put_on_is_taken_off_at_once(
    client: Any,
    two_users: Any,  # noqa: F811
    system: Crmd,
):
    """The undo of a relay that refused a whole audience: ``source`` and ``campaignId``
    choose the entries, of the caller's list only; the answer says how many."""
    alice, bob, alice_user, bob_user = two_users
    for user in (alice_user, bob_user):
        await suppress(
            TenantStore(system.db, user["id"]),
            [
                Entry(f"c1-{i}@example.com", "550 relay not permitted", "failure", "c1")
                for i in range(3)
            ]
            + [Entry("c2@example.com", "550 5.1.1 no such user", "failure", "c2")]
            + [Entry("u@example.com", "followed the link", "unsubscribe", "c1")],
        )
    assert (await client.post(URL, headers=alice, json={"email": "op@example.com"})).status == 201

    query = {"source": "failure", "campaignId": "c1"}
    answer = await client.delete(URL, headers=alice, params=query)
    assert answer.status == 200 and await answer.json() == {"removed": 3}
    again = await client.delete(URL, headers=alice, params=query)
    assert await again.json() == {"removed": 0}
    left = await (await client.get(URL, headers=alice)).json()
    assert sorted(i["email"] for i in left["items"]) == [
        "c2@example.com",
        "op@example.com",
        "u@example.com",
    ]
    assert left["total"] == 3
    assert (await (await client.get(URL, headers=bob)).json())["total"] == 5  # Bob's untouched

    by_source = await client.delete(URL, headers=alice, params={"source": "failure"})
    assert await by_source.json() == {"removed": 1}
    nothing = await client.delete(URL, headers=alice)
    assert nothing.status == 400 and (await nothing.json())["error"]["details"] == {
        "field": "source"
    }
    unknown = await client.delete(URL, headers=alice, params={"source": "spam"})
    assert unknown.status == 422
