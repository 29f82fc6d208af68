"""Loading plugins: built-in and third-party alike, from the entry-point group ``crmd``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy

from crmd.plugins import hookspecs
from crmd.plugins.markers import PROJECT


def make_plugin_manager(
    settings: Mapping[str, Mapping[str, Any]], *, entry_points: bool = True
) -> pluggy.PluginManager:
    """A manager with crmd's hooks and every installed plugin not turned off by
    ``enabled = false`` in its ``[plugins.<name>]`` table."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    for name, table in settings.items():
        if table.get("enabled", True) is False:
            manager.set_blocked(name)
    if entry_points:
        manager.load_setuptools_entrypoints(PROJECT)
    return manager


def describe(manager: pluggy.PluginManager) -> list[tuple[str, list[str]]]:
    """Each loaded plugin's name with the hooks it implements, sorted by name."""
    rows = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:  # blocked
            continue
        hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
        rows.append((name, hooks))
    return sorted(rows)
