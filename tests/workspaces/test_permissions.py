"""The permission table against the routes: every route has a rule, and a walk of every
API route with every role and a foreign workspace finds each refused exactly where the
table says, and nowhere a way into a workspace the caller does not belong to."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.console.web import OPEN, SIGNED
from crmd.http.describe import PUBLIC as PUBLIC_MARK
from crmd.workspaces.guard import UNLISTED, rule_of
from crmd.workspaces.members import add_member, create_workspace
from crmd.workspaces.roles import (
    API,
    CONSOLE,
    PERMISSIONS,
    PERSON,
    PUBLIC,
    ROLE_ORDER,
    ROLES,
    SCOPES,
)

Headers = dict[str, str]


def routes(system: Crmd) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in system.app.router.routes()
        if route.resource is not None
        and route.method not in ("HEAD", "OPTIONS")
        and not route.resource.canonical.startswith("/static")
        and route.resource.canonical not in UNLISTED
    }


def test_every_route_has_a_rule_and_every_rule_a_route(system: Crmd) -> None:
    present = routes(system)
    missing = sorted(r for r in present if rule_of(*r) is None)
    assert not missing, f"routes without a permission rule: {missing}"
    gone = sorted((API.keys() | CONSOLE.keys()) - present)
    assert not gone, f"rules for routes that are gone: {gone}"


async def sign_in(client: Any, email: str) -> tuple[Headers, str]:
    answer = await (await client.post("/api/v1/user/dev-login", json={"email": email})).json()
    return {"Authorization": f"Bearer {answer['token']}"}, answer["user"]["id"]


@pytest.fixture
async def team(client: Any, system: Crmd) -> tuple[str, dict[str, Headers], Headers]:
    """A workspace with one member of each role, and an outsider (their own workspace
    only)."""
    people: dict[str, Headers] = {}
    owner_headers, owner = await sign_in(client, "owner@example.com")
    workspace = await create_workspace(system.web_db, owner, "owner@example.com", "Shop")
    people["owner"] = {**owner_headers, "X-Crmd-Workspace": workspace}
    for role in ROLE_ORDER[:-1]:
        headers, user = await sign_in(client, f"{role}@example.com")
        await add_member(system.web_db, workspace, user, f"{role}@example.com", role)
        people[role] = {**headers, "X-Crmd-Workspace": workspace}
    outsider, _ = await sign_in(client, "outsider@example.com")
    return workspace, people, outsider


def guarded(system: Crmd) -> list[tuple[tuple[str, str], Any]]:
    """The API's routes that need a permission in a workspace, with their rules."""
    present = routes(system)
    return [
        (route, rule)
        for route, rule in sorted(API.items())
        if rule.needs not in (PUBLIC, PERSON) and route in present
    ]


def concrete(path: str, workspace: str) -> str:
    path = path.replace("{id}", workspace) if path.startswith("/api/v1/workspaces/") else path
    return re.sub(r"\{([^}]+)\}", lambda m: EXAMPLES.get(m[1], str(ObjectId())), path)


EXAMPLES = {"kind": "customers", "email": "x@example.com", "n": "1"}


def refused_for(answer_status: int, body: Any, needs: str) -> bool:
    return (
        answer_status == 403
        and isinstance(body, dict)
        and (body.get("error") or {}).get("details", {}) == {"needs": needs}
    )


async def test_every_api_route_with_every_role(client: Any, system: Crmd, team: Any) -> None:
    workspace, people, _ = team
    for (method, path), rule in guarded(system):
        url = concrete(path, workspace)
        for role, headers in people.items():
            answer = await client.request(method, url, headers=headers, json={})
            body = await answer.json() if answer.content_type == "application/json" else None
            refused = refused_for(answer.status, body, rule.needs)
            assert refused == (rule.needs not in ROLES[role]), (
                method,
                path,
                role,
                answer.status,
                body,
            )


async def test_no_route_reaches_a_workspace_the_caller_is_not_in(
    client: Any, system: Crmd, team: Any
) -> None:
    workspace, _, outsider = team
    foreign = {**outsider, "X-Crmd-Workspace": workspace}
    for (method, path), _rule in guarded(system):
        answer = await client.request(method, concrete(path, workspace), headers=foreign, json={})
        body = await answer.json()
        assert answer.status == 403 and body["error"]["code"] == "not_a_member", (
            method,
            path,
            body,
        )


def test_the_readme_matrix_is_the_codes() -> None:
    """The README's table of permissions by role says what ROLES says, row by row."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \|[^|]*\|(.*)\|$", readme, flags=re.MULTILINE)
    table = {name: [cell.strip() == "✓" for cell in cells.split("|")] for name, cells in rows}
    assert list(table) == list(PERMISSIONS)
    for permission, marks in table.items():
        assert marks == [permission in ROLES[role] for role in ROLE_ORDER], permission


def test_the_consoles_open_pages_are_the_tables_public_ones(system: Crmd) -> None:
    """A page open to anyone (``@open_page``, ``@signed_link``, ``@public``) has a PUBLIC
    rule, and a PUBLIC console rule is such a page: the two marks cannot drift apart."""
    for route in system.app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":
            continue
        rule = CONSOLE.get((route.method, resource.canonical))
        if rule is None:
            continue
        is_open = any(getattr(route.handler, mark, False) for mark in (OPEN, SIGNED, PUBLIC_MARK))
        assert is_open == (rule.needs == PUBLIC), (route.method, resource.canonical)


async def test_every_api_route_with_a_key_of_each_scope(
    client: Any, system: Crmd, team: Any
) -> None:
    """A key is refused exactly where its one scope is not what the route needs, and
    always on a workspace's own routes and on those for people alone."""
    workspace, people, _ = team
    present = routes(system)
    for scope in SCOPES:
        made = await client.post(
            "/api/v1/keys", json={"name": scope, "scopes": [scope]}, headers=people["owner"]
        )
        assert made.status == 201
        key = {"Authorization": f"Bearer {(await made.json())['key']}"}
        for (method, path), rule in guarded(system):
            answer = await client.request(method, concrete(path, workspace), headers=key, json={})
            body = await answer.json() if answer.content_type == "application/json" else None
            seen = (method, path, scope, answer.status, body)
            if path.startswith("/api/v1/workspaces/"):
                assert answer.status == 403 and body["error"]["code"] == "person_only", seen
            else:
                assert refused_for(answer.status, body, rule.needs) == (rule.needs != scope), seen
        for method, path in sorted(r for r, rule in API.items() if rule.needs == PERSON):
            if (method, path) not in present:
                continue
            answer = await client.request(method, path, headers=key, json={})
            body = await answer.json()
            assert answer.status == 403 and body["error"]["code"] == "person_only", (path, body)
