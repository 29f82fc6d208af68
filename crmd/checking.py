"""``crmd check-config``'s look at the plugins: built as crmd builds them at start, on the
same configuration, and closed again."""

from __future__ import annotations

import aiohttp

from crmd.app import plugin_contexts
from crmd.campaigns.vendors import Vendors
from crmd.config import Config
from crmd.plugins.manager import collect, get_plugin_manager
from crmd.receipts.sources import ReceiptSources


async def check(config: Config) -> None:
    """What ``crmd check-config`` checks beyond the settings' own types: the plugins load
    and accept their settings. PluginError names the plugin and the key."""
    async with aiohttp.ClientSession() as http:
        manager = get_plugin_manager(config.plugins)
        contexts = plugin_contexts(config, "check-config", http)
        vendors = Vendors(
            collect(manager, "crmd_vendors", contexts), config.campaigns.default_vendor
        )
        try:
            ReceiptSources(vendors, collect(manager, "crmd_receipt_sources", contexts))
            collect(manager, "crmd_suggesters", contexts)
            collect(manager, "crmd_actors", contexts)
        finally:
            await vendors.close()
