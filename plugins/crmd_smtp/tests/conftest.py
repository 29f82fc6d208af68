"""The smtp vendor's fixtures: a real relay (``smtp_relay.LocalRelay``) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from smtp_relay import PASSWORD, USER, LocalRelay, start_relay


@pytest.fixture
async def relay() -> AsyncIterator[LocalRelay]:
    """A relay with no login."""
    test_relay = LocalRelay()
    server = await start_relay(test_relay)
    yield test_relay
    server.close()


@pytest.fixture
async def login_relay() -> AsyncIterator[LocalRelay]:
    """A relay that wants the login USER, PASSWORD before it takes any mail."""
    test_relay = LocalRelay(login=(USER, PASSWORD))
    server = await start_relay(test_relay)
    yield test_relay
    server.close()
