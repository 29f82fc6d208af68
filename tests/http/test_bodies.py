"""One rule for every JSON body: a field the body does not name is refused with 422
naming it, on every route crmd describes; the original clients' routes alone keep
accepting (and ignoring) the extra fields their clients send."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from crmd.app import Crmd
from crmd.http.compat import ALIASES
from crmd.http.describe import Media, description_of
from crmd.http.openapi import api_routes

ORIGINAL_ROUTES = {(alias.method, alias.path) for alias in ALIASES}
ANY_ID = "0123456789abcdef01234567"


def body_structs(body: Any) -> list[type[msgspec.Struct]]:
    """The Structs a route's declared body decodes (a JSON body among its media)."""
    values = body if isinstance(body, tuple) and not isinstance(body, Media) else (body,)
    return [v for v in values if isinstance(v, type) and issubclass(v, msgspec.Struct)]


def structs_within(
    info: msgspec.inspect.Type, seen: set[type] | None = None
) -> Iterator[msgspec.inspect.StructType]:
    """Every Struct a body holds, at any depth (in lists, unions, dicts...), each once:
    a body may hold itself (a flow's branch holds steps)."""
    seen = set() if seen is None else seen
    if isinstance(info, msgspec.inspect.StructType):
        if info.cls in seen:
            return
        seen.add(info.cls)
        yield info
        for field in info.fields:
            yield from structs_within(field.type, seen)
        return
    for name in ("type", "item_type", "key_type", "value_type"):
        inner = getattr(info, name, None)
        if isinstance(inner, msgspec.inspect.Type):
            yield from structs_within(inner, seen)
    for inner in getattr(info, "types", ()):
        yield from structs_within(inner, seen)


def json_body_routes(system: Crmd) -> list[tuple[str, str, type[msgspec.Struct]]]:
    found = []
    for method, path, handler in api_routes(system.app):
        operation = description_of(handler)
        if operation is None or (method, path) in ORIGINAL_ROUTES:
            continue
        found += [(method, path, struct) for struct in body_structs(operation.body)]
    return found


async def test_every_json_body_crmd_declares_refuses_unknown_fields(system: Crmd):
    routes = json_body_routes(system)
    assert len(routes) >= 10  # the walk found the API's bodies
    for method, path, struct in routes:
        for inner in structs_within(msgspec.inspect.type_info(struct)):
            assert inner.forbid_unknown_fields, (method, path, inner.cls.__name__)


async def test_every_route_with_a_json_body_names_the_unknown_field_it_refuses(
    client: Any, auth: Any, system: Crmd
):
    # msgspec stops at an unknown field before it looks for missing ones, so this one
    # body is refused by every route, whatever its required fields.
    me = await (await client.get("/api/v1/user/me", headers=auth)).json()
    own = me["user"]["id"]  # their own workspace's id: a workspace path must be theirs
    for method, path, _ in json_body_routes(system):
        url = re.sub(r"{[^}]+}", ANY_ID, path.replace("/workspaces/{id}", f"/workspaces/{own}"))
        response = await client.request(method, url, headers=auth, json={"surprise": 1})
        assert response.status == 422, (method, path, await response.text())
        error = (await response.json())["error"]
        assert error["code"] == "invalid_body", (method, path)
        assert error["details"] == {"field": "$.surprise"}, (method, path)
        assert "surprise" in error["message"], (method, path)


async def test_a_campaign_with_a_misspelt_field_is_refused_and_nothing_is_created(
    client: Any, auth: Any, system: Crmd
):
    body = {"name": "Thanks", "message": "Hi {name}", "rule": "spend > 1", "daft": True}
    response = await client.post("/api/v1/campaigns", headers=auth, json=body)
    assert response.status == 422
    assert (await response.json())["error"] == {
        "code": "invalid_body",
        "message": "Object contains unknown field `daft`",
        "details": {"field": "$.daft"},
    }
    assert await system.db.campaigns.count_documents({}) == 0


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/segment", {"name": "Big", "rule": "spend > 1", "logicType": "AND"}, 201),
        ("/api/v1/segment", {"segment_rule": {"rule": "spend > 1"}, "userId": "u1"}, 201),
        ("/api/v1/segment/preview", {"rule": "spend > 1", "conditions": []}, 200),
        (
            "/api/v1/compaigns",
            {"name": "n", "message": "Hi", "rule": "spend > 1", "draft": True, "userId": "u"},
            201,
        ),
    ],
)
async def test_the_original_clients_routes_still_ignore_fields_they_do_not_take(
    client: Any, auth: Any, path: str, body: dict[str, Any], status: int
):
    response = await client.post(path, headers=auth, json=body)
    assert response.status == status, await response.text()


async def test_an_original_route_still_names_a_bad_field_it_does_take(client: Any, auth: Any):
    response = await client.post(
        "/api/v1/segment/preview", headers=auth, json={"rule": 5, "conditions": []}
    )
    assert response.status == 422
    assert (await response.json())["error"]["details"] == {"field": "$.rule"}
