"""crmd: a self-hosted customer-engagement backend.

A plugin needs nothing from crmd but ``from crmd import hookimpl``.
"""

from crmd.plugins.markers import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
