"""``[audit]``: how long the audit log keeps its entries."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct


class AuditConfig(Struct, forbid_unknown_fields=True, kw_only=True):
    """The audit log (``crmd.workspaces.audit``)."""

    retention_days: Annotated[int, Meta(ge=1, le=36_500)] = 365
    """Entries older than this are deleted by the clock; nothing else deletes one."""
