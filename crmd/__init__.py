"""crmd: a self-hosted customer-engagement backend.

A plugin imports everything it uses from ``crmd.plugins``; ``from crmd import hookimpl``
still works for plugins written before that surface existed.
"""

from crmd.plugins.markers import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
