"""``[campaigns] default_vendor``: the vendor of a campaign that names none."""

from __future__ import annotations

import base64

import pytest

from crmd.runtime.daemon import StartupError
from crmd.services.embedded import Urls
from tests.conftest import crmd_with

WEBHOOK = {
    "url": "http://127.0.0.1:9/send",
    "secret": "whsec_" + base64.b64encode(b"k" * 32).decode(),
}


async def test_a_campaign_naming_no_vendor_goes_through_the_default(services: Urls) -> None:
    async with crmd_with(services, plugins={"webhook": WEBHOOK}) as crmd:
        first, other = list(crmd.vendors.by_name)
        assert {first, other} == {"webhook", "dummy_vendor"}
        assert crmd.vendors.get(None).name == first  # with no setting: the first loaded
    async with crmd_with(
        services, plugins={"webhook": WEBHOOK}, campaigns={"default_vendor": other}
    ) as crmd:
        assert crmd.vendors.get(None).name == other
        assert crmd.vendors.get(first).name == first


async def test_a_default_no_plugin_provides_stops_crmd_naming_the_key(services: Urls) -> None:
    with pytest.raises(StartupError) as stopped:
        async with crmd_with(services, campaigns={"default_vendor": "smtp"}):
            pass
    message = str(stopped.value)
    assert "campaigns.default_vendor = 'smtp'" in message
    assert "dummy_vendor" in message
