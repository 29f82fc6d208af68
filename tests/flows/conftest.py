"""The webhooks' local endpoint, for the flows' own events."""

from tests.webhooks.conftest import endpoint

__all__ = ["endpoint"]
