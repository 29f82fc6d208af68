"""Everything a plugin may use from crmd, in one place: ``from crmd.plugins import ...``.

The shipped plugins import nothing else from crmd (``tests/plugins/test_surface.py``
checks), so what is here is the whole contract: the hook marker, the context each hook
receives, the vendor and suggester types, the receipt-signature helpers, the rule
language's parser and syntax tree, and the actor base class. The hooks themselves are
documented in ``crmd.plugins.hookspecs``.

The names load on first use: ``import crmd`` (which ``crmd.client`` needs) must not pull
in aiohttp, structlog and the rule parser just because ``hookimpl`` lives here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from crmd.plugins.markers import hookimpl, hookspec

if TYPE_CHECKING:
    from crmd.config import is_loopback
    from crmd.messages import MessageStatus
    from crmd.plugins.context import PluginContext, PluginSettingsError
    from crmd.plugins.signature import (
        SECRET_PREFIX,
        SignatureError,
        secret_bytes,
        sign,
        signed_headers,
        verify,
    )
    from crmd.plugins.suggester import Suggester
    from crmd.plugins.vendor import (
        Accepted,
        CheckResult,
        Failed,
        Nonce,
        OutgoingMessage,
        ReceiptEvent,
        ReceiptSource,
        Retry,
        SendResult,
        Vendor,
        VendorMisconfigured,
    )
    from crmd.runtime.actor import Actor, Health
    from crmd.segments.ast import (
        And,
        Compare,
        DateValue,
        Exists,
        InList,
        Node,
        Not,
        Or,
        Relative,
        Value,
    )
    from crmd.segments.parse import RuleError, parse_rule

_EXPORTS = {
    "crmd.config": ("is_loopback",),
    "crmd.messages": ("MessageStatus",),
    "crmd.plugins.context": ("PluginContext", "PluginSettingsError"),
    "crmd.plugins.suggester": ("Suggester",),
    "crmd.plugins.vendor": (
        "Accepted",
        "CheckResult",
        "Failed",
        "Nonce",
        "OutgoingMessage",
        "ReceiptEvent",
        "ReceiptSource",
        "Retry",
        "SendResult",
        "Vendor",
        "VendorMisconfigured",
    ),
    "crmd.plugins.signature": (
        "SECRET_PREFIX",
        "SignatureError",
        "secret_bytes",
        "sign",
        "signed_headers",
        "verify",
    ),
    "crmd.runtime.actor": ("Actor", "Health"),
    "crmd.segments.ast": (
        "And",
        "Compare",
        "DateValue",
        "Exists",
        "InList",
        "Node",
        "Not",
        "Or",
        "Relative",
        "Value",
    ),
    "crmd.segments.parse": ("RuleError", "parse_rule"),
}
"""The modules that define the public names, and the names each gives."""
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "SECRET_PREFIX",
    "Accepted",
    "Actor",
    "And",
    "CheckResult",
    "Compare",
    "DateValue",
    "Exists",
    "Failed",
    "Health",
    "InList",
    "MessageStatus",
    "Node",
    "Nonce",
    "Not",
    "Or",
    "OutgoingMessage",
    "PluginContext",
    "PluginSettingsError",
    "ReceiptEvent",
    "ReceiptSource",
    "Relative",
    "Retry",
    "RuleError",
    "SendResult",
    "SignatureError",
    "Suggester",
    "Value",
    "Vendor",
    "VendorMisconfigured",
    "hookimpl",
    "hookspec",
    "is_loopback",
    "parse_rule",
    "secret_bytes",
    "sign",
    "signed_headers",
    "verify",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value
