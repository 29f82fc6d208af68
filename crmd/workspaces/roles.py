"""Who may do what: the permissions, the roles and key scopes that hold them, and the one
table that names the permission every route needs.

Permissions:

- ``read``: see the workspace's data (customers, campaigns, figures, logs);
- ``write``: change it without messaging anyone (segments, drafts, suppressions, flows
  as drafts, webhooks, customers by API);
- ``import``: load customers and orders (CSV uploads, posted records, events);
- ``send``: start, stop or resume messages to customers (a campaign, a test send, one
  message, activating or pausing a flow);
- ``manage``: members, invitations, API keys, the audit log, erasing a customer;
- ``own``: make or remove owners, delete the workspace.

Sending is its own permission because it is the one action that cannot be undone: an
editor drafts segments and flows, someone trusted with ``send`` lets them go.

Roles are cumulative: viewer < editor < sender < admin < owner. An API key holds the
scopes it was made with, a subset of ``read``, ``write``, ``send`` and ``import``; a key
never manages the workspace.
"""

from __future__ import annotations

from typing import Final, NamedTuple

READ, WRITE, IMPORT, SEND, MANAGE, OWN = "read", "write", "import", "send", "manage", "own"
PERMISSIONS: Final = (READ, WRITE, IMPORT, SEND, MANAGE, OWN)

ROLES: Final[dict[str, frozenset[str]]] = {
    "viewer": frozenset({READ}),
    "editor": frozenset({READ, WRITE, IMPORT}),
    "sender": frozenset({READ, WRITE, IMPORT, SEND}),
    "admin": frozenset({READ, WRITE, IMPORT, SEND, MANAGE}),
    "owner": frozenset(PERMISSIONS),
}
ROLE_ORDER: Final = ("viewer", "editor", "sender", "admin", "owner")
SCOPES: Final = (READ, WRITE, SEND, IMPORT)
"""What an API key may hold."""

PUBLIC: Final = "public"
"""No caller needed (sign-in, signed callbacks, signed links)."""
PERSON: Final = "person"
"""A signed-in person, in any workspace or none (their own profile, their workspaces,
accepting an invitation). API keys are refused."""


class Rule(NamedTuple):
    needs: str
    """A permission, ``PUBLIC`` or ``PERSON``."""
    audit: str = ""
    """The audit log's name for a successful call; empty: not recorded."""


R, M = Rule(READ), Rule(MANAGE)
V1 = "/api/v1"

API: Final[dict[tuple[str, str], Rule]] = {
    # Signing in, signed callbacks, the API's description.
    ("POST", f"{V1}/user/oauth"): Rule(PUBLIC),
    ("GET", f"{V1}/user/oauth"): Rule(PUBLIC),
    ("POST", f"{V1}/user/dev-login"): Rule(PUBLIC),
    ("POST", f"{V1}/deliveryReceipt/{{vendor}}"): Rule(PUBLIC),
    ("POST", f"{V1}/deliveryReceipt"): Rule(PUBLIC),
    ("POST", "/api/receipt"): Rule(PUBLIC),
    ("GET", f"{V1}/openapi.json"): Rule(PUBLIC),
    ("GET", f"{V1}/user/me"): Rule(PERSON),
    # Workspaces, members, invitations.
    ("GET", f"{V1}/workspaces"): Rule(PERSON),
    ("POST", f"{V1}/workspaces"): Rule(PERSON, "workspace.created"),
    ("GET", f"{V1}/workspaces/{{id}}/members"): R,
    ("PATCH", f"{V1}/workspaces/{{id}}/members/{{user}}"): Rule(MANAGE, "member.role_changed"),
    ("DELETE", f"{V1}/workspaces/{{id}}/members/{{user}}"): Rule(READ, "member.removed"),
    ("GET", f"{V1}/workspaces/{{id}}/invitations"): M,
    ("POST", f"{V1}/workspaces/{{id}}/invitations"): Rule(MANAGE, "member.invited"),
    ("DELETE", f"{V1}/workspaces/{{id}}/invitations/{{invitation}}"): Rule(
        MANAGE, "invitation.withdrawn"
    ),
    ("POST", f"{V1}/invitations/accept"): Rule(PERSON, "member.joined"),
    # Keys and the audit log.
    ("POST", f"{V1}/keys"): Rule(MANAGE, "key.created"),
    ("GET", f"{V1}/keys"): M,
    ("DELETE", f"{V1}/keys/{{id}}"): Rule(MANAGE, "key.revoked"),
    ("GET", f"{V1}/audit"): M,
    ("GET", f"{V1}/audit.csv"): M,
    # Records.
    ("POST", f"{V1}/upload/{{kind}}"): Rule(IMPORT, "import.started"),
    ("POST", f"{V1}/uploads/customers"): Rule(IMPORT, "import.started"),
    ("POST", f"{V1}/uploads/orders"): Rule(IMPORT, "import.started"),
    ("GET", f"{V1}/uploads"): R,
    ("GET", f"{V1}/uploads/{{id}}"): R,
    ("GET", f"{V1}/uploads/{{id}}/errors.csv"): R,
    ("GET", f"{V1}/customers"): R,
    ("GET", f"{V1}/orders"): R,
    ("POST", f"{V1}/customers"): Rule(IMPORT, "import.started"),
    ("POST", f"{V1}/orders"): Rule(IMPORT, "import.started"),
    ("GET", f"{V1}/customers/{{id}}"): R,
    ("PATCH", f"{V1}/customers/{{id}}"): Rule(WRITE, "customer.changed"),
    ("GET", f"{V1}/customers/{{id}}/export"): Rule(MANAGE, "customer.exported"),
    ("DELETE", f"{V1}/customers/{{id}}"): Rule(MANAGE, "customer.erased"),
    ("POST", f"{V1}/events"): Rule(IMPORT),
    # Segments.
    ("POST", f"{V1}/segments"): Rule(WRITE, "segment.saved"),
    ("GET", f"{V1}/segments"): R,
    ("GET", f"{V1}/segments/{{id}}"): R,
    ("PUT", f"{V1}/segments/{{id}}"): Rule(WRITE, "segment.saved"),
    ("DELETE", f"{V1}/segments/{{id}}"): Rule(WRITE, "segment.deleted"),
    ("POST", f"{V1}/segments/preview"): R,
    ("GET", f"{V1}/audience/preview"): R,
    # Campaigns and messages. Making a campaign sends it.
    ("POST", f"{V1}/campaigns"): Rule(SEND, "campaign.created"),
    ("GET", f"{V1}/campaigns"): R,
    ("GET", f"{V1}/campaigns/{{id}}"): R,
    ("GET", f"{V1}/campaigns/{{id}}/logs"): R,
    ("GET", f"{V1}/campaigns/{{id}}/summary"): R,
    ("POST", f"{V1}/campaigns/{{id}}/send"): Rule(SEND, "campaign.sent"),
    ("POST", f"{V1}/campaigns/{{id}}/pause"): Rule(SEND, "campaign.paused"),
    ("POST", f"{V1}/campaigns/{{id}}/resume"): Rule(SEND, "campaign.resumed"),
    ("POST", f"{V1}/campaigns/{{id}}/cancel"): Rule(SEND, "campaign.cancelled"),
    ("POST", f"{V1}/campaigns/{{id}}/retry-failed"): Rule(SEND, "campaign.retried"),
    ("POST", f"{V1}/campaigns/{{id}}/test"): Rule(SEND, "campaign.test_sent"),
    ("POST", f"{V1}/messages"): Rule(SEND, "message.sent"),
    ("GET", f"{V1}/dashboard-summary"): R,
    ("GET", f"{V1}/dead-letters"): R,
    # Flows: a draft is written; activating, pausing or deleting one is sending.
    ("POST", f"{V1}/flows"): Rule(WRITE, "flow.created"),
    ("GET", f"{V1}/flows"): R,
    ("GET", f"{V1}/flows/{{id}}"): R,
    ("GET", f"{V1}/flows/{{id}}/versions/{{n}}"): R,
    ("PATCH", f"{V1}/flows/{{id}}"): Rule(WRITE, "flow.changed"),
    ("POST", f"{V1}/flows/{{id}}/activate"): Rule(SEND, "flow.activated"),
    ("POST", f"{V1}/flows/{{id}}/pause"): Rule(SEND, "flow.paused"),
    ("DELETE", f"{V1}/flows/{{id}}"): Rule(SEND, "flow.archived"),
    # AI suggestions read the workspace's data.
    ("POST", f"{V1}/ai/messages"): R,
    ("POST", f"{V1}/ai/rule"): R,
    ("POST", f"{V1}/ai/tags"): R,
    # Suppressions.
    ("GET", f"{V1}/suppressions"): R,
    ("POST", f"{V1}/suppressions"): Rule(WRITE, "suppression.added"),
    ("DELETE", f"{V1}/suppressions"): Rule(WRITE, "suppression.removed"),
    ("DELETE", f"{V1}/suppressions/{{email}}"): Rule(WRITE, "suppression.removed"),
    # Webhooks carry the workspace's data to another server.
    ("POST", f"{V1}/webhooks"): Rule(MANAGE, "webhook.created"),
    ("GET", f"{V1}/webhooks"): R,
    ("GET", f"{V1}/webhooks/{{id}}"): R,
    ("PATCH", f"{V1}/webhooks/{{id}}"): Rule(MANAGE, "webhook.changed"),
    ("DELETE", f"{V1}/webhooks/{{id}}"): Rule(MANAGE, "webhook.deleted"),
    ("POST", f"{V1}/webhooks/{{id}}/test"): M,
    ("GET", f"{V1}/webhooks/{{id}}/deliveries"): R,
}
"""Every /api/ route (the original clients' paths take their target's rule)."""

CONSOLE: Final[dict[tuple[str, str], Rule]] = {
    ("GET", "/sign-in"): Rule(PUBLIC),
    ("POST", "/sign-in"): Rule(PUBLIC),
    ("GET", "/sign-in/google"): Rule(PUBLIC),
    ("GET", "/sign-in/google/callback"): Rule(PUBLIC),
    ("GET", "/u/{token}"): Rule(PUBLIC),
    ("POST", "/u/{token}"): Rule(PUBLIC),
    ("GET", "/c/{token}"): Rule(PUBLIC),  # a tracked click, signed
    ("GET", "/o/{token}"): Rule(PUBLIC),  # a tracked open, signed
    ("POST", "/sign-out"): Rule(PUBLIC),
    ("GET", "/reference"): Rule(PUBLIC),  # the API's reference: the same for everyone
    ("POST", "/workspace"): Rule(PERSON),
    ("GET", "/invitations/{token}"): Rule(PERSON),
    ("POST", "/invitations/{token}"): Rule(PERSON, "member.joined"),
    ("GET", "/members"): R,
    ("POST", "/members/invite"): Rule(MANAGE, "member.invited"),
    ("POST", "/members/invitations/{invitation}/withdraw"): Rule(MANAGE, "invitation.withdrawn"),
    ("POST", "/members/{user}/role"): Rule(MANAGE, "member.role_changed"),
    ("POST", "/members/{user}/remove"): Rule(READ, "member.removed"),  # leaving; others: manage
    ("GET", "/"): R,
    ("GET", "/campaigns"): R,
    ("GET", "/campaigns/new"): R,
    ("GET", "/campaigns/{id}"): R,
    ("GET", "/campaigns/{id}/events"): R,
    ("POST", "/campaigns"): Rule(SEND, "campaign.created"),
    ("POST", "/campaigns/preview"): R,
    ("POST", "/campaigns/suggest"): R,
    ("POST", "/campaigns/{id}/summary"): R,
    ("POST", "/campaigns/{id}/test"): Rule(SEND, "campaign.test_sent"),
    ("POST", "/campaigns/{id}/{action}"): Rule(SEND, "campaign.{action}"),
    ("GET", "/customers"): R,
    ("GET", "/customers/{id}"): R,
    ("GET", "/customers/{id}/export"): Rule(MANAGE, "customer.exported"),
    ("POST", "/customers/{id}/erase"): Rule(MANAGE, "customer.erased"),
    ("GET", "/orders"): R,
    ("GET", "/flows"): R,
    ("GET", "/flows/new"): R,
    ("GET", "/flows/{id}"): R,
    ("GET", "/flows/{id}/edit"): R,
    ("POST", "/flows/new"): Rule(WRITE, "flow.created"),
    ("POST", "/flows/{id}/edit"): Rule(WRITE, "flow.changed"),
    ("POST", "/flows/{id}/{move}"): Rule(SEND, "flow.{move}"),
    ("GET", "/imports"): R,
    ("GET", "/imports/{id}"): R,
    ("GET", "/imports/{id}/events"): R,
    ("GET", "/imports/{id}/errors.csv"): R,
    ("POST", "/imports"): Rule(IMPORT, "import.started"),
    ("GET", "/plugins"): R,
    ("GET", "/system"): R,
    ("GET", "/segments"): R,
    ("GET", "/segments/{id}"): R,
    ("POST", "/segments"): Rule(WRITE, "segment.saved"),
    ("POST", "/segments/count"): R,
    ("POST", "/segments/suggest"): R,
    ("POST", "/segments/{id}"): Rule(WRITE, "segment.saved"),
    ("POST", "/segments/{id}/delete"): Rule(WRITE, "segment.deleted"),
    ("GET", "/suppressions"): R,
    ("POST", "/suppressions"): Rule(WRITE, "suppression.added"),
    ("POST", "/suppressions/remove"): Rule(WRITE, "suppression.removed"),
    ("GET", "/webhooks"): R,
    ("GET", "/webhooks/{id}"): R,
    ("POST", "/webhooks"): Rule(MANAGE, "webhook.created"),
    ("POST", "/webhooks/{id}/delete"): Rule(MANAGE, "webhook.deleted"),
    ("POST", "/webhooks/{id}/enabled"): Rule(MANAGE, "webhook.changed"),
    ("POST", "/webhooks/{id}/test"): M,
    ("GET", "/keys"): M,
    ("POST", "/keys"): Rule(MANAGE, "key.created"),
    ("POST", "/keys/{id}/revoke"): Rule(MANAGE, "key.revoked"),
    ("GET", "/audit"): M,
    ("GET", "/audit.csv"): M,
}
"""Every console page and form, by its path with the patterns' regular expressions left
out (``/segments/{id}``)."""


def role_allows(role: str, needs: str) -> bool:
    return needs in ROLES.get(role, frozenset())


def at_least(role: str) -> tuple[str, ...]:
    """``role`` and every role above it."""
    return ROLE_ORDER[ROLE_ORDER.index(role) :]
