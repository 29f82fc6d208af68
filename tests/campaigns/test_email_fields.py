"""A campaign's subject and HTML body: checked like its message when it is created
(the error names the field and the column), stored, and shown in its view."""

from __future__ import annotations

from typing import Any

BASE = {"name": "Mail", "message": "Hi {first_name}", "rule": "spend > 0", "draft": True}


async def test_subject_and_html_are_stored_and_shown(client: Any, auth: dict[str, str]):
    body = {**BASE, "subject": "For {first_name|you}", "html": "<p>{name}: {unsubscribe_url}</p>"}
    made = await client.post("/api/v1/campaigns", headers=auth, json=body)
    assert made.status == 201, await made.text()
    view = await made.json()
    assert (view["subject"], view["html"]) == (body["subject"], body["html"])
    assert view["stats"]["suppressed"] == 0
    again = await (await client.get(f"/api/v1/campaigns/{view['id']}", headers=auth)).json()
    assert (again["subject"], again["html"]) == (body["subject"], body["html"])
    plain = await (await client.post("/api/v1/campaigns", headers=auth, json=BASE)).json()
    assert (plain["subject"], plain["html"]) == ("", "")


async def test_a_bad_subject_or_html_is_refused_naming_the_field(client: Any, auth: dict[str, str]):
    cases = [
        ({"subject": "Bye {unsubscribe_url}"}, "subject", 5),
        ({"subject": "Hi {nam}"}, "subject", 4),
        ({"html": "<p>{{ok}} {spend|</p>"}, "html", 11),
        ({"message": "{visits} then }"}, "message", 15),
    ]
    for fields, field, column in cases:
        answer = await client.post("/api/v1/campaigns", headers=auth, json={**BASE, **fields})
        error = (await answer.json())["error"]
        assert answer.status == 422 and error["code"] == "invalid_template", error
        assert error["details"] == {"field": field, "column": column}, error
    long = {**BASE, "subject": "x" * 201}
    answer = await client.post("/api/v1/campaigns", headers=auth, json=long)
    assert answer.status == 422
    assert (await answer.json())["error"]["details"] == {"field": "$.subject"}
    listed = await (await client.get("/api/v1/campaigns", headers=auth)).json()
    assert listed["total"] == 0
