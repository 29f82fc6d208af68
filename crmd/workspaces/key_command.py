"""``crmd keys create|list|revoke``: an operator's hands on a workspace's API keys.

It opens the database the config names (the running crmd's embedded one, when the
config says ``embedded``) and works through the same service as the API, so a key made
here is bounded, stored and audited as one made there. The operator names the workspace
by its id, or by its owner's e-mail address for that person's own workspace. ``create``
prints the key alone on stdout, once (``KEY=$(crmd keys create ...)``); what it says
about it goes to stderr."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.asynchronous.database import AsyncDatabase

from crmd.config import Config
from crmd.emails import InvalidEmail, normalise_email
from crmd.errors import CrmdError
from crmd.store.command import command_database
from crmd.store.tenant import TenantStore
from crmd.workspaces import audit
from crmd.workspaces.access import Caller
from crmd.workspaces.keys import Keys, expiry
from crmd.workspaces.schema import ApiKey, CreateKey, KeyMaker

Database = AsyncDatabase[dict[str, Any]]
ACTIONS = ("create", "list", "revoke")
BY_COMMAND = KeyMaker("command")
AUDIT_FROM = "command line"


class KeyCommandError(Exception):
    """What the operator asked cannot be done; the message says why (exit 1)."""


class KeyRequest(msgspec.Struct, frozen=True):
    action: str
    workspace: str
    name: str = ""
    scopes: list[str] = []
    expires: str = ""
    id: str = ""


async def workspace_of(db: Database, named: str) -> str:
    """The workspace's id, from its id or its owner's e-mail (their own workspace)."""
    if "@" in named:
        try:
            email = normalise_email(named)
        except InvalidEmail as exc:
            raise KeyCommandError(f"--workspace: {exc}") from None
        # (read here, not through crmd.auth: the workspaces' package does not use it)
        user = await db.users.find_one({"email": email}, sort=[("lastLoginAt", -1)])
        if user is None:
            raise KeyCommandError(f"no one with the e-mail address {email} has signed in")
        workspace = str(user["_id"])
    else:
        workspace = named
    try:
        found = await db.workspaces.find_one({"_id": ObjectId(workspace)}, {"_id": 1})
    except (InvalidId, TypeError):
        found = None
    if found is None:
        raise KeyCommandError(f"no workspace {named!r}")
    return workspace


def row(key: ApiKey) -> tuple[str, ...]:
    def moment(at: datetime | None) -> str:
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if at else "-"

    used = f"{moment(key.lastUsedAt)} {key.lastUsedFrom}".strip() if key.lastUsedAt else "-"
    return (
        key.id,
        key.prefix + "…",
        key.state,
        ",".join(key.scopes),
        moment(key.expiresAt),
        used,
        key.name,
    )


def table(keys: list[ApiKey]) -> list[str]:
    """One line per key: id, prefix, state, scopes, expiry, last use, name."""
    if not keys:
        return ["no API keys"]
    rows: list[tuple[str, ...]] = [
        ("ID", "PREFIX", "STATE", "SCOPES", "EXPIRES", "LAST USED", "NAME"),
        *(row(k) for k in keys),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(r[:6], widths, strict=True)), r[6]]) for r in rows
    ]


async def act(db: Database, keys: Keys, request: KeyRequest, out: TextIO, err: TextIO) -> int:
    workspace = await workspace_of(db, request.workspace)
    store = TenantStore(db, workspace)
    by = Caller(workspace, frozenset(), address=AUDIT_FROM)
    if request.action == "list":
        found, total = await keys.list(store)
        print("\n".join(table(found)), file=out)
        if total > len(found):
            print(f"(the newest {len(found)} of {total})", file=out)
        return 0
    if request.action == "revoke":
        gone = await keys.revoke(store, request.id, BY_COMMAND)
        await audit.record(db, by, "key.revoked", object_id=gone.id, details={"via": "crmd keys"})
        print(f"revoked API key {gone.id} ({gone.name})", file=out)
        return 0
    asked = {"name": request.name, "scopes": request.scopes}
    try:
        body = msgspec.convert(
            {**asked, "expiresAt": expiry(request.expires, datetime.now(UTC))}, CreateKey
        )
    except msgspec.ValidationError as exc:
        option = {"name": "--name", "scopes": "--scope", "expiresAt": "--expires"}
        field = str(exc).rpartition("$.")[2].rstrip("`").split("[")[0]
        raise KeyCommandError(f"{option.get(field, field)}: {exc}") from None
    made = await keys.create(store, body, BY_COMMAND)
    await audit.record(
        db,
        by,
        "key.created",
        object_id=made.id,
        fields=["name", "scopes", "expiresAt"],
        details={"via": "crmd keys"},
    )
    print(made.key, file=out)
    until = made.expiresAt.isoformat(timespec="minutes") if made.expiresAt else "never"
    print(
        f"crmd: API key {made.id} ({made.name}; {', '.join(made.scopes)}; expires: {until}) "
        f"made in workspace {workspace}. It is shown this once: keep it now.",
        file=err,
    )
    return 0


async def run(config: Config, request: KeyRequest, out: TextIO, err: TextIO) -> int:
    """Connect to MongoDB, act, print; the exit code. Errors the operator can mend are
    ``KeyCommandError`` (a CrmdError's message becomes one)."""
    async with command_database(config) as db:
        try:
            return await act(db, Keys(config.keys.max_per_workspace), request, out, err)
        except CrmdError as exc:
            raise KeyCommandError(exc.message) from None
