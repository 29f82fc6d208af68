"""Loading plugins: built-in and third-party alike, from the entry-point group ``crmd``,
and asking them for what they offer, each with a context of its own."""

from __future__ import annotations

import functools
import importlib.metadata
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

import pluggy

from crmd.plugins import hookspecs
from crmd.plugins.context import PluginContext, PluginSettingsError
from crmd.plugins.markers import PROJECT

T = TypeVar("T")


class PluginError(Exception):
    """A plugin cannot be loaded or used; ``str(err)`` is one line that names it."""


def installed_plugins() -> tuple[importlib.metadata.EntryPoint, ...]:
    """The entry points of the group ``crmd``, in the order the installed distributions
    are found. Looked up once for each ``sys.path`` (reading every installed package's
    metadata takes a noticeable part of building crmd, which tests do a thousand times)."""
    return _entry_points(tuple(sys.path))


@functools.cache
def _entry_points(path: tuple[str, ...]) -> tuple[importlib.metadata.EntryPoint, ...]:
    return tuple(importlib.metadata.entry_points(group=PROJECT))


def get_plugin_manager(
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    load_entrypoints: bool = True,
    blocked: Collection[str] = (),
    plugins: Mapping[str, object] | None = None,
) -> pluggy.PluginManager:
    """A fresh manager with crmd's hooks and every installed plugin that is not turned
    off (``enabled = false`` in its table, or named in ``blocked``); ``plugins`` adds
    objects by name, as tests do. Ends with ``check_pending``: a plugin that implements
    a hook crmd does not have (a misspelt name) stops start-up, named."""
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    for name, table in (settings or {}).items():
        if table.get("enabled", True) is False:
            manager.set_blocked(name)
    for name in blocked:
        manager.set_blocked(name)
    if load_entrypoints:
        for entry in installed_plugins():
            if manager.get_plugin(entry.name) is not None or manager.is_blocked(entry.name):
                continue
            try:
                manager.register(entry.load(), name=entry.name)
            except Exception as exc:
                detail = " ".join(str(exc).split())  # one line: some errors span several
                raise PluginError(f"a plugin failed to load: {detail}"[:500]) from None
    for name, plugin in (plugins or {}).items():
        manager.register(plugin, name=name)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(_unknown_hook(manager, exc)) from None
    if load_entrypoints:
        _every_table_names_a_plugin(settings or {}, plugins or {})
    return manager


def _every_table_names_a_plugin(
    settings: Mapping[str, Mapping[str, Any]], registered: Mapping[str, object]
) -> None:
    """A ``[plugins.<name>]`` table for no installed plugin is a misspelling (``smpt``)
    or a plugin not installed: either way its settings would be ignored in silence."""
    installed = {e.name for e in installed_plugins()} | set(registered)
    for name in settings:
        if name not in installed:
            raise PluginError(
                f"plugins.{name}: no installed plugin is named {name!r} "
                f"(installed: {', '.join(sorted(installed)) or 'none'})"
            )


def _unknown_hook(manager: pluggy.PluginManager, exc: pluggy.PluginValidationError) -> str:
    name = manager.get_name(exc.plugin) or repr(exc.plugin)
    known = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith(f"{PROJECT}_")))
    unknown = sorted(
        hook
        for hook, caller in vars(manager.hook).items()
        if not caller.has_spec() and any(i.plugin is exc.plugin for i in caller.get_hookimpls())
    )
    return (
        f"plugin {name!r} implements unknown hook(s) {', '.join(unknown)}; crmd's hooks are {known}"
    )


def collect(
    manager: pluggy.PluginManager, hook: str, context_for: Callable[[str], PluginContext]
) -> list[Any]:
    """Every object the plugins return from the registration hook ``hook``, in pluggy's
    calling order (the plugin registered last answers first). Each plugin gets a context
    of its own, so the hook is called through pluggy's hook caller once per plugin,
    narrowed to that plugin; a plugin that raises, or whose settings are wrong, stops
    start-up with a line that names it."""
    found: list[Any] = []
    for name, plugin in _implementing(manager, hook):
        others = [p for _, p in manager.list_name_plugin() if p is not None and p is not plugin]
        caller = manager.subset_hook_caller(hook, remove_plugins=others)
        try:
            answers = caller(context=context_for(name))
        except PluginSettingsError as exc:
            raise PluginError(str(exc)) from None
        except Exception as exc:
            raise PluginError(
                f"plugin {name!r} failed in {hook}: {type(exc).__name__}: {exc}"[:500]
            ) from None
        for offered in answers:  # one answer: the plugin's one implementation
            if not isinstance(offered, list | tuple):
                raise PluginError(f"plugin {name!r}: {hook} must return a list")
            found.extend(offered)
    return found


def _implementing(manager: pluggy.PluginManager, hook: str) -> list[tuple[str, object]]:
    """The registered plugins that implement ``hook``, by name, in pluggy's calling
    order: the reverse of their registration."""
    caller = getattr(manager.hook, hook)
    return [
        (name, plugin)
        for name, plugin in reversed(manager.list_name_plugin())
        if plugin is not None and caller in (manager.get_hookcallers(plugin) or [])
    ]


def describe(manager: pluggy.PluginManager) -> list[tuple[str, list[str]]]:
    """Each loaded plugin's name with the hooks it implements, sorted by name."""
    rows = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:  # blocked
            continue
        hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
        rows.append((name, hooks))
    return sorted(rows)
