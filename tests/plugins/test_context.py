"""Plugins are checked at start and kept at arm's length: a misspelt hook, a raising hook
or a bad setting stops crmd with one line naming it; a plugin sees its own narrow
context; a vendor that raises or hangs on a receipt refuses its own callback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd import hookimpl
from crmd.app import open_crmd
from crmd.config import load_config
from crmd.plugins.context import PluginContext
from crmd.plugins.manager import get_plugin_manager
from crmd.plugins.vendor import CheckResult, OutgoingMessage, ReceiptEvent, SendResult
from crmd.services.embedded import Urls
from tests.conftest import make_test_config

pytestmark = pytest.mark.slow  # runs crmd as a process

REPO = Path(__file__).resolve().parents[2]


def install(tmp_path: Path, name: str, source: str) -> dict[str, str]:
    """A distribution with an entry point in group ``crmd``, as pip leaves one; the
    environment that puts it on crmd's path."""
    (tmp_path / f"{name}.py").write_text(source)
    dist = tmp_path / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[crmd]\n{name} = {name}\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}


def crmd_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmd", "--config", str(REPO / "crmd.toml"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


MISSPELT = """
from crmd import hookimpl

@hookimpl
def crmd_vendor(context):
    return []
"""
RAISING = """
from crmd import hookimpl

@hookimpl
def crmd_suggesters(context):
    raise RuntimeError("no licence file")
"""


def test_a_misspelt_hook_stops_start_up_with_one_line_naming_it(tmp_path: Path):
    env = install(tmp_path, "typo_plugin", MISSPELT)
    checked = crmd_command(env, "check-config")
    assert checked.returncode == 1
    [line] = checked.stderr.strip().splitlines()
    assert line.startswith("crmd: config error: plugin 'typo_plugin' implements unknown hook")
    assert "crmd_vendor;" in line and "crmd_vendors" in line
    served = crmd_command(
        {**env, "CRMD_EMBEDDED__DATA_DIR": str(tmp_path / "data")}, "serve", "--port", "1"
    )
    assert served.returncode == 1
    assert (
        served.stderr.strip()
        .splitlines()[-1]
        .startswith("crmd: cannot start: plugin 'typo_plugin' implements unknown hook")
    )


def test_a_hook_that_raises_stops_start_up_naming_the_plugin(tmp_path: Path):
    env = install(tmp_path, "broken_plugin", RAISING)
    checked = crmd_command(env, "check-config")
    assert checked.returncode == 1
    assert checked.stderr.strip() == (
        "crmd: config error: plugin 'broken_plugin' failed in crmd_suggesters: "
        "RuntimeError: no licence file"
    )


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "CRMD_PLUGINS__DUMMY_VENDOR__FAILURE_RATE",
            "lots",
            "plugins.dummy_vendor.failure_rate = 'lots': Expected `float`, got `str`",
        ),
        (
            "CRMD_PLUGINS__DUMMY_VENDOR__FAILURE_RATE",
            "1.5",
            "plugins.dummy_vendor.failure_rate = '1.5': Expected `float` <= 1.0",
        ),
        (
            "CRMD_PLUGINS__DUMMY_VENDOR__FAILUR_RATE",
            "0.5",
            "plugins.dummy_vendor.failur_rate: unknown setting",
        ),
        (
            "CRMD_PLUGINS__GEMINI__TIMEOUT",
            "soon",
            "plugins.gemini.timeout = 'soon': Expected `float`, got `str`",
        ),
        (
            "CRMD_PLUGINS__GEMINI__MODEL",
            "gemini-2.5-flash\n",
            "plugins.gemini.model = 'gemini-2.5-flash\\n': Expected `str` matching regex",
        ),
        (
            "CRMD_PLUGINS__DUMMY_VENDOR__SECRET",
            "$env:NO_SUCH_VARIABLE",
            "plugins.dummy_vendor.secret: $env:NO_SUCH_VARIABLE is not set",
        ),
        (  # a misspelt table used to be ignored in silence
            "CRMD_PLUGINS__SMPT__HOST",
            "smtp.example.com",
            "crmd: config error: plugins.smpt: no installed plugin is named 'smpt' (installed: ",
        ),
    ],
)
def test_a_bad_plugin_setting_stops_check_config_naming_the_key(
    variable: str, value: str, line: str
):
    result = crmd_command({**os.environ, variable: value}, "check-config")
    assert result.returncode == 1
    [said] = result.stderr.strip().splitlines()
    assert line in said


async def test_settings_from_the_environment_are_typed_by_the_plugin(services: Urls):
    environ = {
        "CRMD_PLUGINS__DUMMY_VENDOR__RECEIPTS": "false",
        "CRMD_PLUGINS__DUMMY_VENDOR__RATE": "12.5",
    }
    base = make_test_config(services)
    config = load_config(
        None,
        environ,
        {
            ("mongodb", "url"): base.mongodb.url,
            ("mongodb", "database"): base.mongodb.database,
            ("redis", "url"): base.redis.url,
            ("auth", "google_login"): False,
            ("auth", "jwt_secret"): base.auth.jwt_secret,
        },
        search=False,
    ).config
    async with open_crmd(config) as crmd:
        vendor: Any = crmd.vendors.get("dummy_vendor")
        assert vendor.receipts is False
        assert vendor.rate_limit() == 12.5
        await crmd.mongo.drop_database(config.mongodb.database)


class Capturing:
    """A plugin that keeps what crmd gave it."""

    def __init__(self) -> None:
        self.contexts: list[PluginContext] = []

    @hookimpl
    def crmd_vendors(self, context: PluginContext) -> list[Any]:
        self.contexts.append(context)
        return []


async def test_a_plugin_gets_its_own_narrow_context(services: Urls):
    plugin = Capturing()
    config = make_test_config(services, server={"public_url": "https://crm.example.com"})
    manager = get_plugin_manager(load_entrypoints=False, plugins={"capture": plugin})
    async with open_crmd(config, plugin_manager=manager) as crmd:
        [context] = plugin.contexts
        assert context.name == "capture"
        assert context.receipt_url == "https://crm.example.com/api/v1/deliveryReceipt/capture"
        assert context.secret and context.secret != crmd.jwt_secret
        for name, value in vars(context).items():
            assert value != crmd.jwt_secret, name
            assert crmd.jwt_secret not in repr(value), name
            assert not isinstance(value, AsyncDatabase | Redis), name
            assert value is not crmd.mongo, name
        await crmd.mongo.drop_database(config.mongodb.database)


PARSED: list[str] = []
"""The modes whose parse_receipts was called."""
VERIFIED = threading.Event()
"""Set as a hanging verify_receipt returns at last."""


class Troubled:
    """A vendor whose receipt code hangs or raises, as a buggy plugin's might."""

    name = "troubled"

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def rate_limit(self) -> float:
        return 10.0

    async def send(self, messages: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        return []

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> None:
        if self.mode == "hangs":
            time.sleep(3)
            VERIFIED.set()
        if self.mode == "refuses":
            raise ValueError("bad signature")

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        PARSED.append(self.mode)
        if self.mode == "parse hangs":
            time.sleep(3)
        if self.mode == "gives junk":  # a ReceiptEvent with no usable id and time
            return [ReceiptEvent("DELIVERED", "yesterday", None)]  # type: ignore[arg-type]
        raise KeyError("events")

    async def check(self) -> CheckResult:
        return CheckResult(True)

    async def close(self) -> None:
        return None


class TroubledPlugin:
    def __init__(self, mode: str) -> None:
        self.mode = mode

    @hookimpl
    def crmd_vendors(self, context: PluginContext) -> list[Troubled]:
        return [Troubled(self.mode)]


@pytest.mark.parametrize(
    ("mode", "status", "words"),
    [
        ("hangs", 401, "verify_receipt took longer than 0.5 s"),
        ("refuses", 401, "receipt not accepted by troubled: bad signature"),
        ("raises", 422, "the troubled vendor could not read this receipt"),
        # verified, then stuck reading: the sender hears its body could not be read
        ("parse hangs", 422, "the troubled vendor could not read this receipt"),
        ("gives junk", 422, "the troubled vendor could not read this receipt"),
    ],
)
async def test_a_vendor_that_hangs_or_raises_on_a_receipt_refuses_it_and_is_named(
    services: Urls, aiohttp_client: Any, mode: str, status: int, words: str
):
    config = make_test_config(services)
    manager = get_plugin_manager(load_entrypoints=False, plugins={"t": TroubledPlugin(mode)})
    async with open_crmd(config, plugin_manager=manager) as crmd:
        from crmd.http.keys import RECEIPTS

        crmd.app[RECEIPTS].budget = 0.5
        client = await aiohttp_client(crmd.app)
        started = time.monotonic()
        response = await client.post("/api/v1/deliveryReceipt/troubled", data=b"[]")
        assert time.monotonic() - started < 2.5
        assert response.status == status
        error = (await response.json())["error"]
        assert words in error["message"]
        assert await crmd.redis.xlen(crmd.streams.receipts) == 0
        # A body is read only once its signature held (one that hangs is given up on).
        if mode == "hangs":
            assert await asyncio.to_thread(VERIFIED.wait, 10)
            await asyncio.sleep(0.2)  # (time for a parse that should not come)
        assert (mode in PARSED) == (mode not in ("hangs", "refuses")), PARSED
        await crmd.mongo.drop_database(config.mongodb.database)
