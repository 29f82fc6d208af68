"""The navigation shows each caller the pages the permission table lets them open."""

from __future__ import annotations

from crmd.console.navigation import may_open
from crmd.console.web import NAV
from crmd.workspaces.access import Caller
from crmd.workspaces.roles import ROLES


def labels(role: str) -> list[str]:
    caller = Caller("w1", ROLES[role], role, user="u1", email="u@example.com")
    return [label for _, label in may_open(NAV, caller)]


def test_only_those_who_manage_see_the_api_keys_page():
    for role in ("viewer", "editor", "sender"):
        shown = labels(role)
        assert "API keys" not in shown and "Customers" in shown, role
    for role in ("admin", "owner"):
        assert labels(role) == [label for _, label in NAV], role


def test_a_person_in_no_workspace_sees_no_page_of_one():
    """Only the pages open to anyone (the API's reference) are left."""
    nobody = Caller("", frozenset(), user="u1", email="u@example.com")
    assert may_open(NAV, nobody) == (("/reference", "API"),)
    assert may_open(NAV, None) == NAV  # (before a caller is known: as it was)
