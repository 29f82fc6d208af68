"""Plugins load through the entry-point group ``crmd``, as an installed package's would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crmd.actors import ACTORS
from crmd.plugins.manager import PluginError, describe, get_plugin_manager
from crmd.services.embedded import Urls
from tests.conftest import crmd_with

REPO = Path(__file__).resolve().parents[2]
PLUGIN = """
from crmd import hookimpl
from crmd.runtime.actor import Actor, Health


class Poller(Actor):
    async def run(self):
        self.health = Health.OK
        await self.stopping.wait()


@hookimpl
def crmd_actors(context):
    every = context.table.get("every", 60)
    return [Poller(f"acme_poller:{every}")]
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution on sys.path, with its metadata and entry point, as pip leaves it."""
    (tmp_path / "acme_poller.py").write_text(PLUGIN)
    dist = tmp_path / "acme_poller-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-poller\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[crmd]\nacme_poller = acme_poller\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_installed_plugin_is_loaded_with_its_hooks(installed: Path):
    manager = get_plugin_manager({})
    assert ("acme_poller", ["crmd_actors"]) in describe(manager)


def test_enabled_false_turns_a_plugin_off(installed: Path):
    manager = get_plugin_manager({"acme_poller": {"enabled": False}})
    assert "acme_poller" not in dict(describe(manager))


async def test_plugin_actors_run_under_the_supervisor_before_http(installed: Path, services: Urls):
    async with crmd_with(services, plugins={"acme_poller": {"every": 5}}) as crmd:
        names = crmd.run_order(ACTORS)
    assert names == [
        "ingest",
        "dispatch",
        "receipts",
        "tracking",
        "events",
        "flows",
        "clock",
        "acme_poller:5",
        "http",
    ]


@pytest.mark.slow  # runs crmd as a process
def test_plugins_command_lists_them(installed: Path, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-m", "crmd", "--config", str(REPO / "crmd.toml"), "plugins"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "acme_poller: crmd_actors" in result.stdout.splitlines()


def test_hookspecs_are_documented_for_plugin_authors():
    from crmd.plugins import hookspecs

    hooks = [name for name in dir(hookspecs) if name.startswith("crmd_")]
    assert hooks
    for name in hooks:
        doc = textwrap.dedent(getattr(hookspecs, name).__doc__ or "")
        assert len(doc.split()) > 30, f"{name} needs a docstring a plugin author can use"


def test_a_table_for_no_installed_plugin_is_refused_naming_it():
    # [plugins.smpt] used to be ignored in silence, and campaigns went to the dummy vendor.
    with pytest.raises(PluginError) as refused:
        get_plugin_manager({"smpt": {"host": "smtp.example.com"}})
    said = str(refused.value)
    assert said.startswith("plugins.smpt: no installed plugin is named 'smpt' (installed: ")
    assert "smtp" in said and "dummy_vendor" in said
    assert get_plugin_manager({"smtp": {"enabled": False}}) is not None
