"""One public plugin surface: ``crmd.plugins`` exports what a plugin may use, the shipped
plugins import nothing else from crmd, every hook is documented, and hooks are called
through pluggy's hook caller."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import crmd.plugins
from crmd.plugins import hookimpl, hookspecs
from crmd.plugins.context import PluginContext
from crmd.plugins.manager import PluginError, collect, get_plugin_manager

REPO = Path(__file__).resolve().parents[2]
HOOKS = sorted(name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction))


def crmd_imports(path: Path) -> list[tuple[int, str]]:
    """Each crmd module a file imports, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name == "crmd" or name.startswith("crmd.")]


def test_shipped_plugins_import_only_the_public_surface():
    files = sorted((REPO / "plugins").rglob("*.py"))
    assert len(files) > 20
    wrong = []
    for path in files:
        in_tests = "tests" in path.relative_to(REPO / "plugins").parts
        allowed = {"crmd.plugins"} | ({"crmd.testing"} if in_tests else set())
        wrong += [
            f"{path.relative_to(REPO)}:{line}: {name}"
            for line, name in crmd_imports(path)
            if name not in allowed
        ]
    assert wrong == [], "plugins may import only crmd.plugins (tests also crmd.testing)"


def test_the_surface_check_catches_a_private_import(tmp_path: Path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("import json\nfrom crmd.plugins import hookimpl\nimport crmd.store.reads\n")
    assert crmd_imports(sneaky) == [(2, "crmd.plugins"), (3, "crmd.store.reads")]


def test_every_exported_name_resolves_to_its_defining_module():
    for name in crmd.plugins.__all__:
        value = getattr(crmd.plugins, name)
        assert value is not None, name
    from crmd.plugins.signature import signed_headers
    from crmd.plugins.vendor import VendorMisconfigured
    from crmd.segments.parse import parse_rule

    assert crmd.plugins.VendorMisconfigured is VendorMisconfigured
    assert crmd.plugins.signed_headers is signed_headers
    assert crmd.plugins.parse_rule is parse_rule
    with pytest.raises(AttributeError, match="no attribute 'Database'"):
        crmd.plugins.Database  # noqa: B018


def test_importing_crmd_loads_none_of_the_surface_until_it_is_used():
    probe = (
        "import sys, crmd; from crmd.plugins import hookimpl;"
        "print(sorted(m for m in ('crmd.segments.parse', 'crmd.plugins.context', 'aiohttp')"
        " if m in sys.modules))"
    )
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "[]"


def test_every_hook_documents_its_parameters_and_return_value():
    assert HOOKS == ["crmd_actors", "crmd_receipt_sources", "crmd_suggesters", "crmd_vendors"]
    for name in HOOKS:
        hook = getattr(hookspecs, name)
        doc = inspect.getdoc(hook) or ""
        for parameter in inspect.signature(hook).parameters:
            assert re.search(rf"^\s+{parameter}: \S", doc, re.M), f"{name}: {parameter}"
        assert re.search(r"^Returns:\n\s+\S", doc, re.M), f"{name}: its return value"


def test_every_hook_has_a_section_in_the_plugin_guide():
    guide = (REPO / "docs" / "writing-a-vendor-plugin.md").read_text()
    headings = [line for line in guide.splitlines() if line.startswith("#")]
    for name in HOOKS:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"### `{name}({params})`" in headings, f"the guide has no section for {name}"


class Offers:
    """A plugin that offers one vendor-like object per call, named after its context."""

    def __init__(self) -> None:
        self.contexts: list[str] = []

    @hookimpl
    def crmd_vendors(self, context: PluginContext) -> list[Any]:
        self.contexts.append(context.name)
        return [f"vendor of {context.name}"]


def context_for(name: str) -> PluginContext:
    return PluginContext(name, {}, None, "http://crmd", "s")


def test_hooks_are_called_through_pluggys_caller_each_plugin_with_its_own_context():
    first, second = Offers(), Offers()
    manager = get_plugin_manager(load_entrypoints=False, plugins={"first": first, "second": second})
    seen: list[tuple[str, list[str]]] = []

    def before(hook: str, impls: Any, kwargs: Any) -> None:
        seen.append((hook, [impl.plugin_name for impl in impls]))

    undo = manager.add_hookcall_monitoring(before, lambda *_: None)
    try:
        offered = collect(manager, "crmd_vendors", context_for)
    finally:
        undo()
    assert offered == ["vendor of second", "vendor of first"]  # pluggy's order: last first
    assert first.contexts == ["first"] and second.contexts == ["second"]
    assert seen == [("crmd_vendors", ["second"]), ("crmd_vendors", ["first"])]


def test_a_hook_answering_no_list_is_refused_naming_the_plugin():
    class Bad:
        @hookimpl
        def crmd_vendors(self, context: PluginContext) -> Any:
            return "not a list"

    manager = get_plugin_manager(load_entrypoints=False, plugins={"bad": Bad()})
    with pytest.raises(PluginError, match=r"^plugin 'bad': crmd_vendors must return a list$"):
        collect(manager, "crmd_vendors", context_for)
