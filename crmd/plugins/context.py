"""What crmd hands a plugin: its own settings, an HTTP session, a logger with its name,
crmd's public address and a secret of its own. Never crmd's token-signing secret, the
database or anything else of crmd's internals."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import aiohttp
import msgspec
import structlog

from crmd.config import redact_value
from crmd.plugins.signature import signed_headers

S = TypeVar("S", bound=msgspec.Struct)

_ERROR_PATH = re.compile(r"^(?P<problem>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"^Object contains unknown field `([^`]+)`$")
_NAMED = re.compile(r"^([a-z_][a-z0-9_]*): (.*)$", re.DOTALL)


class PluginSettingsError(Exception):
    """A plugin's setting is wrong; ``str(err)`` is one line naming ``plugins.<name>.<key>``."""


def plugin_secret(crmd_secret: str, name: str) -> str:
    """A secret for the plugin ``name`` alone, derived from crmd's own: both ends of a
    vendor that lives in crmd (the dummy vendor) can sign and verify with it, and knowing
    it reveals nothing of crmd's."""
    return hmac.new(
        crmd_secret.encode(), f"crmd plugin {name}".encode(), hashlib.sha256
    ).hexdigest()


class PluginContext:
    """One plugin's view of crmd, given to its registration hooks."""

    def __init__(
        self,
        name: str,
        table: Mapping[str, Any],
        http: aiohttp.ClientSession | None,
        public_url: str,
        secret: str,
    ) -> None:
        self.name = name
        self.table = {k: v for k, v in table.items() if k != "enabled"}
        """The raw ``[plugins.<name>]`` table (file and environment merged); prefer
        ``settings(YourStruct)``."""
        self._http = http
        self.public_url = public_url.rstrip("/")
        """Where crmd can be reached from outside, e.g. ``http://127.0.0.1:8080``."""
        self.secret = secret
        """This plugin's own signing secret (see ``plugin_secret``)."""
        self.log = structlog.get_logger(f"crmd.plugins.{name}").bind(plugin=name)

    @property
    def http(self) -> aiohttp.ClientSession:
        """An aiohttp session for the plugin's calls; set a timeout on each of them."""
        if self._http is None:
            raise RuntimeError("no HTTP session here (crmd is only checking the settings)")
        return self._http

    @property
    def receipt_url(self) -> str:
        """Where this plugin's vendor posts its delivery receipts."""
        return f"{self.public_url}/api/v1/deliveryReceipt/{self.name}"

    def settings(self, schema: type[S]) -> S:
        """The plugin's table decoded by its own Struct. Values from the environment are
        text, so they are converted (``"false"`` is False, ``"0.5"`` a float); an unknown
        key or a bad value raises PluginSettingsError naming the key."""
        try:
            return msgspec.convert(self.table, schema, strict=False)
        except msgspec.ValidationError as exc:
            raise PluginSettingsError(self._explain(str(exc))) from None

    def sign(self, body: bytes, message_id: str, timestamp: int) -> dict[str, str]:
        """Standard Webhooks headers for ``body``, signed with this plugin's secret."""
        return signed_headers(self.secret, message_id, timestamp, body)

    def _explain(self, message: str) -> str:
        match = _ERROR_PATH.match(message)
        assert match is not None
        problem, path = match.group("problem"), match.group("path") or ""
        unknown = _UNKNOWN.match(problem)
        named = _NAMED.match(problem)
        if unknown:
            path, problem = ".".join(p for p in (path, unknown.group(1)) if p), "unknown setting"
        elif named and not path:  # a Struct's own check: "delay_max: must ..."
            path, problem = named.group(1), named.group(2)
        key = ".".join(p for p in ("plugins", self.name, path) if p)
        value = _lookup(self.table, path)
        hidden = value is None or problem == "unknown setting"
        shown = "" if hidden else f" = {redact_value(key.rsplit('.', 1)[-1], value)!r}"
        return f"{key}{shown}: {problem}"


def _lookup(table: Mapping[str, Any], path: str) -> Any:
    node: Any = table
    for part in path.split(".") if path else []:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return None if node is table else node
