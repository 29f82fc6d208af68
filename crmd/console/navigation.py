"""The navigation a caller sees: the pages of the main menu their permissions open (the
API keys page only for those who may manage the workspace), by the same rules the
guard enforces (``crmd.workspaces.roles.CONSOLE``)."""

from __future__ import annotations

from collections.abc import Sequence

from crmd.workspaces.access import Caller
from crmd.workspaces.roles import CONSOLE, PERSON, PUBLIC

Link = tuple[str, str]


def may_open(pages: Sequence[Link], caller: Caller | None) -> tuple[Link, ...]:
    """The (address, label) pairs of ``pages`` whose GET the caller is allowed."""
    if caller is None:
        return tuple(pages)

    def allowed(href: str) -> bool:
        rule = CONSOLE.get(("GET", href))
        return rule is None or rule.needs in (PUBLIC, PERSON) or rule.needs in caller.permissions

    return tuple(page for page in pages if allowed(page[0]))
