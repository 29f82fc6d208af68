"""The workspaces API's wire Structs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from crmd.http.describe import Moment
from crmd.http.schema import Body
from crmd.workspaces.members import NAME_MAX
from crmd.workspaces.roles import SCOPES

Role = Literal["viewer", "editor", "sender", "admin", "owner"]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Workspace(msgspec.Struct):
    id: str
    name: str
    role: Role
    """Your role in it."""
    current: bool
    """The one this request works in."""


class WorkspaceList(msgspec.Struct):
    items: list[Workspace]
    total: int


class CreateWorkspace(Body):
    name: Name


class WorkspacePath(msgspec.Struct):
    id: Id


class MemberPath(msgspec.Struct):
    id: Id
    user: Id


class Member(msgspec.Struct):
    userId: str
    email: str
    role: Role
    joinedAt: Moment | None = None


class MemberList(msgspec.Struct):
    items: list[Member]
    total: int


class ChangeRole(Body):
    role: Role


class RoleChanged(msgspec.Struct):
    userId: str
    role: Role
    was: Role


Email = Annotated[str, msgspec.Meta(min_length=1, max_length=320)]


class Invite(Body):
    email: Email
    role: Role


class InvitationPath(msgspec.Struct):
    id: Id
    invitation: Id


class Invitation(msgspec.Struct):
    id: str
    email: str
    """The address it was sent to: only a person signed in with it can accept."""
    role: Role
    link: str
    """The signed link to accept it, to copy (also e-mailed when ``emailedBy`` is set)."""
    invitedBy: str
    createdAt: Moment
    expiresAt: Moment
    emailedBy: str = ""
    """The vendor that took the invitation's e-mail; empty: none did (copy the link)."""
    emailProblem: str = ""
    """Why the vendor did not take it, when one was tried."""


class InvitationList(msgspec.Struct):
    items: list[Invitation]
    total: int


class AcceptInvitation(Body):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    """The last part of the link, after ``/invitations/``."""


class Joined(msgspec.Struct):
    workspaceId: str
    name: str
    role: Role


# API keys (``crmd.workspaces.keys``).

Scope = Literal["read", "write", "send", "import"]
assert set(Scope.__args__) == set(SCOPES)  # type: ignore[attr-defined]
KEY_NAME_MAX = 80
KeyName = Annotated[str, msgspec.Meta(min_length=1, max_length=KEY_NAME_MAX)]
Scopes = Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=len(SCOPES))]
KeyState = Literal["live", "expired", "revoked"]


class CreateKey(Body):
    name: KeyName
    """What the key is for (1 to 80 characters), to recognise it in the list."""
    scopes: Scopes
    """What it may do: one or more of read, write, send, import (never manage)."""
    expiresAt: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    """When it stops working: a moment with its offset, in the future and at most two
    years away; null or absent: it works until revoked."""


class KeyMaker(msgspec.Struct):
    """Who made a key: a person (through the API or the console) or the ``crmd keys``
    command, which runs beside crmd with no person signed in."""

    via: Literal["api", "console", "command"]
    userId: str = ""
    email: str = ""


class ApiKey(msgspec.Struct):
    """A key as listed: never the key itself, nor its hash."""

    id: str
    name: str
    scopes: list[Scope]
    prefix: str
    """The key's first characters, to recognise it (``crmd_`` and 7 more)."""
    state: KeyState
    createdAt: Moment
    createdBy: KeyMaker
    expiresAt: Moment | None
    lastUsedAt: Moment | None
    """When a request last came with it (noted at most once a minute)."""
    lastUsedFrom: str
    """The network address that request came from."""
    revokedAt: Moment | None


class CreatedKey(msgspec.Struct):
    id: str
    name: str
    scopes: list[Scope]
    prefix: str
    expiresAt: Moment | None
    createdAt: Moment
    key: str
    """``crmd_`` and 43 more characters: send it as ``Authorization: Bearer <key>``.
    Shown this once only; crmd keeps its SHA-256 alone."""


class KeyList(msgspec.Struct):
    items: list[ApiKey]
    """Newest first, revoked and expired ones too (at most the newest 500)."""
    total: int


class KeyPath(msgspec.Struct):
    id: Id
