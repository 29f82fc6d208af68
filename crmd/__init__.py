"""crmd: a self-hosted customer-engagement backend.

A plugin imports everything it uses from ``crmd.plugins``; ``from crmd import hookimpl``
still works for plugins written before that surface existed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crmd.plugins.markers import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> object:
    # pluggy is loaded when a plugin asks for the marker, not by every ``import crmd``:
    # the typed client (``crmd.client``) needs neither pluggy nor the server's drivers.
    if name == "hookimpl":
        from crmd.plugins.markers import hookimpl

        return hookimpl
    raise AttributeError(f"module 'crmd' has no attribute {name!r}")
