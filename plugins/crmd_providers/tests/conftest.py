"""The providers' fixtures: a real SMTP relay (aiosmtpd) the smtp vendor sends through,
standing in for the provider's own relay."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from provider_kit import Mailbox, start_mailbox


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    box = Mailbox()
    server = await start_mailbox(box)
    yield box
    server.close()
