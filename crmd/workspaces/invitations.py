"""Invitations: a person asked, by e-mail address, to join a workspace with a role.

An invitation is one document in ``invitations`` (not a tenant collection: accepting
finds it by the link, before anyone knows its workspace; it keeps ``workspaceId`` and
is listed by it). Its link (``crmd.workspaces.invitation_links``) is signed, and works:

- for ``[workspaces] invitation_days`` (7) days: then 410 ``invitation_expired``;
- once: the document is claimed by one conditional update, so two accepts at once make
  one member; a used link answers 410 ``invitation_used``;
- until it is withdrawn: then 410 ``invitation_withdrawn`` (withdrawing one that is not
  pending any more is 404 ``invitation_not_found``);
- for the address it was sent to: a person signed in with another answers 403
  ``wrong_person`` (a forwarded link lets nobody else in).

Every refused accept of a genuine link is written to the workspace's audit log. A crash
between the claim and the membership's write costs the invitation (it reads as used):
the person is invited again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from crmd.emails import InvalidEmail, normalise_email
from crmd.errors import (
    Conflict,
    CrmdError,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unprocessable,
)
from crmd.workspaces import audit
from crmd.workspaces.access import Caller
from crmd.workspaces.invitation_links import InvitationLinks
from crmd.workspaces.members import add_member, checked_role, membership
from crmd.workspaces.roles import OWN

log = structlog.get_logger(__name__)
Database = AsyncDatabase[dict[str, Any]]
COLLECTION = "invitations"
PENDING_MAX = 100
PER_DAY = 50
"""Invitations one workspace may make in 24 hours, withdrawn ones included: without it,
inviting and withdrawing in a loop sends an address any number of e-mails."""
PER_ADDRESS_PER_DAY = 3
"""Invitations one address may be sent in 24 hours, from all workspaces together."""
DAY = timedelta(days=1)
"""Pending invitations a workspace may have at once."""
Mailer = Callable[[str, str, str, str], Awaitable[tuple[str, str]]]
"""Hands one e-mail (message id, to, subject, text) to a vendor: ``(vendor, "")`` when
taken, ``("", why)`` when not, ``("", "")`` when there is none to try
(``crmd.campaigns.letters.hand_over``, bound to crmd's vendors)."""


class InvitationGone(CrmdError):
    status, code = 410, "invitation_gone"


class Invitation(msgspec.Struct, frozen=True):
    """An invitation's document, as read."""

    id: str
    workspace: str
    workspace_name: str
    email: str
    role: str
    invited_by: str
    """The inviter's address."""
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    withdrawn_at: datetime | None = None
    emailed_by: str = ""
    """The vendor that took its e-mail, empty when none did."""
    email_problem: str = ""
    """Why no e-mail went, when one was tried."""

    @property
    def pending(self) -> bool:
        return not (self.used_at or self.withdrawn_at) and self.expires_at > datetime.now(UTC)


def _read(doc: dict[str, Any]) -> Invitation:
    def moment(name: str) -> datetime | None:
        value = doc.get(name)
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) else None

    return Invitation(
        id=str(doc["_id"]),
        workspace=doc["workspaceId"],
        workspace_name=doc.get("workspaceName", ""),
        email=doc["email"],
        role=doc["role"],
        invited_by=doc.get("invitedBy", {}).get("email", ""),
        created_at=moment("createdAt") or datetime.now(UTC),
        expires_at=moment("expiresAt") or datetime.now(UTC),
        used_at=moment("usedAt"),
        withdrawn_at=moment("withdrawnAt"),
        emailed_by=doc.get("emailedBy", ""),
        email_problem=doc.get("emailProblem", ""),
    )


def checked_email(raw: Any) -> str:
    if not isinstance(raw, str):
        raise Unprocessable("an invitation needs an email address", details={"field": "email"})
    try:
        return normalise_email(raw)
    except InvalidEmail as exc:
        raise Unprocessable(f"email {exc}", details={"field": "email"}) from None


class Invitations:
    """Makes, lists, withdraws and accepts invitations."""

    def __init__(
        self,
        db: Database,
        links: InvitationLinks,
        days: int,
        mailer: Mailer | None = None,
    ) -> None:
        self.db = db
        self.links = links
        self.days = days
        self.mailer = mailer
        """None: no e-mail is sent, the link is only shown."""

    def link(self, invitation: Invitation) -> str:
        return self.links.url(invitation.id)

    async def invite(self, caller: Caller, email: Any, role: Any) -> Invitation:
        """Invite ``email`` to the caller's workspace as ``role``. Only an owner invites
        an owner (403 ``owner_only``); a member already (409 ``already_member``), an
        address with a pending invitation (409 ``already_invited``: withdraw it first)
        and more than ``PENDING_MAX`` pending (409 ``too_many_invitations``) are
        refused; past ``PER_DAY`` invitations a day from the workspace or
        ``PER_ADDRESS_PER_DAY`` to the address, 429 ``rate_limited``. The e-mail goes
        through the default vendor when there is one; the link is in the answer
        whatever became of it.
        """
        email, role = checked_email(email), checked_role(role)
        if role == "owner" and OWN not in caller.permissions:
            raise Forbidden(
                "only an owner invites an owner", code="owner_only", details={"needs": "own"}
            )
        workspace = caller.workspace
        if await self.db.memberships.find_one({"workspaceId": workspace, "email": email}):
            raise Conflict(f"{email} is already a member of this workspace", code="already_member")
        waiting = await self.pending(workspace)
        same = next((i for i in waiting if i.email == email), None)
        if same is not None:
            raise Conflict(
                f"{email} has an invitation already: copy its link, or withdraw it first",
                code="already_invited",
                details={"invitation": same.id},
            )
        if len(waiting) >= PENDING_MAX:
            raise Conflict(
                f"a workspace has at most {PENDING_MAX} pending invitations: withdraw some",
                code="too_many_invitations",
            )
        now = datetime.now(UTC)
        await self._within_limits(workspace, email, now)
        named = await self.db.workspaces.find_one({"_id": _object_id(workspace)}, {"name": 1})
        doc = {
            "_id": ObjectId(),
            "workspaceId": workspace,
            "workspaceName": (named or {}).get("name", ""),
            "email": email,
            "role": role,
            "invitedBy": {"userId": caller.user, "email": caller.email},
            "createdAt": now,
            "expiresAt": now + timedelta(days=self.days),
        }
        await self.db[COLLECTION].insert_one(doc)
        sent = await self._email(_read(doc))
        if sent:
            await self.db[COLLECTION].update_one({"_id": doc["_id"]}, {"$set": sent})
        return _read({**doc, **sent})

    async def _within_limits(self, workspace: str, email: str, now: datetime) -> None:
        """429 past ``PER_DAY`` invitations of the workspace or ``PER_ADDRESS_PER_DAY``
        to the address in the last 24 hours (withdrawn ones count: they were sent)."""
        since = {"$gt": now - DAY}
        invitations = self.db[COLLECTION]
        for where, most, what in (
            ({"workspaceId": workspace, "createdAt": since}, PER_DAY, "this workspace makes"),
            ({"email": email, "createdAt": since}, PER_ADDRESS_PER_DAY, f"{email} is sent"),
        ):
            if await invitations.count_documents(where) >= most:
                raise TooManyRequests(
                    f"at most {most} invitations a day: {what} no more until tomorrow",
                    retry_after=3600,
                    details={"limit": most},
                )

    async def pending(self, workspace: str) -> list[Invitation]:
        """The workspace's invitations neither used, withdrawn nor expired, oldest first."""
        found = self.db[COLLECTION].find(
            {
                "workspaceId": workspace,
                "usedAt": {"$exists": False},
                "withdrawnAt": {"$exists": False},
                "expiresAt": {"$gt": datetime.now(UTC)},
            }
        )
        return [_read(d) async for d in found.sort("createdAt", 1).limit(PENDING_MAX + 1)]

    async def withdraw(self, workspace: str, invitation: str) -> Invitation:
        """Withdraw a pending invitation of ``workspace``; its link then answers 410
        ``invitation_withdrawn``. 404 for one that is not this workspace's, was used or
        withdrawn already."""
        key = _object_id(invitation)
        doc = await self.db[COLLECTION].find_one_and_update(
            {
                "_id": key,
                "workspaceId": workspace,
                "usedAt": {"$exists": False},
                "withdrawnAt": {"$exists": False},
            },
            {"$set": {"withdrawnAt": datetime.now(UTC)}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise NotFound(
                f"invitation {invitation!r} is not pending in this workspace",
                code="invitation_not_found",
            )
        return _read(doc)

    async def look(self, token: str) -> Invitation:
        """The invitation a link names, if it may still be accepted: 400 or 403 for a
        damaged or forged link, 404 when it names nothing, 410 when it was withdrawn,
        used or has expired."""
        found = await self._genuine(token)
        _still_open(found)
        return found

    async def accept(self, token: str, caller: Caller) -> Invitation:
        """Make the signed-in person a member, with the invitation's role. Refused (and
        the refusal audited in the invitation's workspace): another person's address
        403 ``wrong_person``, a member already 409 ``already_member``, and a link that
        was used, withdrawn or expired 410, as ``look`` says."""
        found = await self._genuine(token)
        try:
            _still_open(found)
            if caller.email.strip().lower() != found.email:
                raise Forbidden(
                    f"this invitation is for {found.email}, and you are signed in as "
                    f"{caller.email}: sign in with that address to accept it",
                    code="wrong_person",
                )
            if await membership(self.db, found.workspace, caller.user) is not None:
                raise Conflict("you are a member of this workspace already", code="already_member")
            claimed = await self.db[COLLECTION].find_one_and_update(
                {
                    "_id": ObjectId(found.id),
                    "usedAt": {"$exists": False},
                    "withdrawnAt": {"$exists": False},
                    "expiresAt": {"$gt": datetime.now(UTC)},
                },
                {"$set": {"usedAt": datetime.now(UTC), "usedBy": caller.user}},
                return_document=ReturnDocument.AFTER,
            )
            if claimed is None:  # taken, withdrawn or expired since it was read
                _still_open(await self._genuine(token))
                raise InvitationGone("this invitation was used", code="invitation_used")
        except CrmdError as exc:
            await self._refused(found, caller, exc.message)
            raise
        await add_member(self.db, found.workspace, caller.user, found.email, found.role)
        return found

    async def _genuine(self, token: str) -> Invitation:
        doc = await self.db[COLLECTION].find_one({"_id": ObjectId(self.links.read(token))})
        if doc is None:
            raise NotFound("this invitation does not exist", code="invitation_not_found")
        return _read(doc)

    async def _refused(self, found: Invitation, caller: Caller, reason: str) -> None:
        there = Caller(
            found.workspace,
            frozenset(),
            user=caller.user,
            email=caller.email,
            address=caller.address,
        )
        try:
            await audit.record(self.db, there, "member.joined", object_id=found.id, refused=reason)
        except Exception:  # the refusal stands; its record failing must not hide it
            log.exception("audit.not_recorded", action="member.joined")

    async def _email(self, invitation: Invitation) -> dict[str, str]:
        """Hand the invitation's e-mail over; what became of it, as the document's
        fields (none when nothing was tried)."""
        if self.mailer is None:
            return {}
        text = (
            f"{invitation.invited_by} invited you to the crmd workspace "
            f"{invitation.workspace_name!r} as {invitation.role}.\n\n"
            f"Accept the invitation: {self.link(invitation)}\n\n"
            f"The link works once, for {invitation.email} only, until "
            f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n"
        )
        # A workspace's name is anyone's text: on one line, so that it stays a subject.
        name = " ".join(invitation.workspace_name.split())[:80] or "a workspace"
        subject = "".join(c for c in f"Join {name} on crmd" if c.isprintable())
        by, problem = await self.mailer(
            f"invitation-{invitation.id}", invitation.email, subject, text
        )
        return {k: v for k, v in (("emailedBy", by), ("emailProblem", problem)) if v}


def _still_open(found: Invitation) -> None:
    if found.withdrawn_at:
        raise InvitationGone("this invitation was withdrawn", code="invitation_withdrawn")
    if found.used_at:
        raise InvitationGone("this invitation was used", code="invitation_used")
    if found.expires_at <= datetime.now(UTC):
        raise InvitationGone(
            "this invitation has expired: ask for a new one", code="invitation_expired"
        )


def _object_id(text: str) -> ObjectId | str:
    """An id as stored: an ObjectId when it is one (an id that is not matches nothing)."""
    try:
        return ObjectId(text)
    except (InvalidId, TypeError):
        return text
