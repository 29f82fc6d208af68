"""``[workspaces]``: how people join a workspace."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct


class WorkspacesConfig(Struct, forbid_unknown_fields=True, kw_only=True):
    """Invitations (``crmd.workspaces.invitations``)."""

    invitation_days: Annotated[int, Meta(ge=1, le=90)] = 7
    """How long an invitation's link may be accepted, in days; after that it answers
    410 ``invitation_expired`` and the person must be invited again."""
    email_invitations: bool = True
    """Also hand each invitation, as an e-mail, to the default vendor
    (``[campaigns] default_vendor``); false: only show its link, to copy."""
