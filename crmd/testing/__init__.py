"""crmd's test kit, for crmd's own tests and a plugin author's alike.

Installed with crmd, it is also a pytest plugin (``crmd.testing.plugin``), so a plugin's
tests get a running crmd, a signed-in client and a receipt signer as fixtures with no
setup at all; see ``docs/writing-a-vendor-plugin.md``. The same parts as functions:

- ``running_crmd(services, plugins, actors)``: crmd running on real servers;
- ``signed_in(url)``: a client session signed in to it;
- ``load_customers(client, csv)`` and ``wait_for_campaign(client, id, *statuses)``;
- ``sign_receipt(body, secret)``: Standard Webhooks headers for a callback;
- ``make_test_config`` and ``crmd_with``: a config, or a crmd with no actor running.
"""

from crmd.testing.running import (
    RunningCrmd,
    load_customers,
    running_crmd,
    signed_in,
    wait_for_campaign,
)
from crmd.testing.servers import crmd_with, make_test_config, real_services
from crmd.testing.signing import sign_receipt

__all__ = [
    "RunningCrmd",
    "crmd_with",
    "load_customers",
    "make_test_config",
    "real_services",
    "running_crmd",
    "sign_receipt",
    "signed_in",
    "wait_for_campaign",
]
