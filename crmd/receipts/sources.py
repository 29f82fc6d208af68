"""Who may post receipts: the vendors, and the receipt sources plugins provide (a mail
provider's event webhook, reporting on mail the smtp vendor sent), by name."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from crmd.campaigns.vendors import Vendors
from crmd.errors import NotFound, Unprocessable
from crmd.plugins.manager import PluginError
from crmd.plugins.vendor import ReceiptSource, Vendor

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Reporter:
    """Whoever a callback is for: a vendor (``reports_for`` empty: its own messages) or a
    source (the vendors whose messages it reports on)."""

    name: str
    plugin: Vendor | ReceiptSource
    reports_for: tuple[str, ...] = ()


class ReceiptSources:
    """The vendors and the plugins' receipt sources. A source named like a vendor, or
    like another source, stops start-up: the other would always answer in its place."""

    def __init__(self, vendors: Vendors, sources: Sequence[ReceiptSource] = ()) -> None:
        self.vendors = vendors
        self.by_name: dict[str, ReceiptSource] = {}
        for source in sources:
            if source.name in vendors.by_name or source.name in self.by_name:
                raise PluginError(
                    f"receipt source {source.name!r}: a vendor or another source has that "
                    "name already (its callbacks would never reach it)"
                )
            reports_for = list(getattr(source, "reports_for", ()))
            if not reports_for or not all(isinstance(v, str) and v for v in reports_for):
                raise PluginError(
                    f"receipt source {source.name!r}: reports_for must name the vendors "
                    "whose mail it reports on"
                )
            self.by_name[source.name] = source

    def reporter(self, name: str | None) -> Reporter:
        """The vendor of that name (the default vendor for None), else the source;
        NotFound naming them all when none has it."""
        try:
            vendor = self.vendors.get(name)
            return Reporter(vendor.name, vendor)
        except Unprocessable:
            pass
        source = self.by_name.get(name or "")
        if source is None:
            known = ", ".join([*self.vendors.by_name, *self.by_name]) or "none"
            raise NotFound(f"no vendor or receipt source {name!r}; there are: {known}")
        return Reporter(source.name, source, tuple(source.reports_for))

    async def close(self) -> None:
        for source in self.by_name.values():
            try:
                await asyncio.wait_for(source.close(), 10)
            except Exception:
                log.exception("receipt_source.close_failed", source=source.name)
