"""Each provider's table: off until filled in, and a wrong value named by its key."""

from __future__ import annotations

from typing import Any

import pytest
from crmd_providers import mailgun, postmark, sendgrid, ses

from crmd.plugins import PluginContext, PluginSettingsError

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"
SENDGRID_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7"
    "yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
)
"""The verification key of SendGrid's own documentation example (P-256)."""


def sources(module: Any, name: str, table: dict[str, Any]) -> list[Any]:
    found: list[Any] = module.crmd_receipt_sources(
        PluginContext(name, table, None, "https://crm.example", "s")
    )
    return found


@pytest.mark.parametrize(
    ("module", "name"),
    [(ses, "ses"), (sendgrid, "sendgrid"), (postmark, "postmark"), (mailgun, "mailgun")],
)
def test_each_provider_is_off_until_its_table_is_filled_in(module: Any, name: str):
    assert sources(module, name, {}) == []


def test_each_provider_filled_in_offers_one_source_reporting_for_smtp():
    offered = [
        *sources(sendgrid, "sendgrid", {"public_key": SENDGRID_KEY}),
        *sources(postmark, "postmark", {"header": "X-Token", "token": "t" * 20}),
        *sources(mailgun, "mailgun", {"signing_key": "k" * 32, "reports_for": ["smtp", "x"]}),
    ]
    assert [(s.name, s.reports_for) for s in offered] == [
        ("sendgrid", ("smtp",)),
        ("postmark", ("smtp",)),
        ("mailgun", ("smtp", "x")),
    ]


@pytest.mark.parametrize(
    ("module", "name", "table", "said"),
    [
        (ses, "ses", {"topic_arns": ["ses-events"]}, "plugins.ses.topic_arns"),
        (
            ses,
            "ses",
            {"topic_arns": [TOPIC], "sns_endpoint": "https://sns.example"},
            "plugins.ses.sns_endpoint",
        ),
        (ses, "ses", {"topic_arns": [TOPIC], "max_age": 0}, "plugins.ses.max_age"),
        (ses, "ses", {"topic_arns": [TOPIC], "max_age": 90_000}, "plugins.ses.max_age"),
        (sendgrid, "sendgrid", {"public_key": "not base64!"}, "plugins.sendgrid.public_key"),
        (sendgrid, "sendgrid", {"public_key": SENDGRID_KEY, "max_age": 0}, "max_age"),
        (postmark, "postmark", {"username": "u"}, "plugins.postmark.password"),
        (postmark, "postmark", {"username": "u", "password": "short"}, "password"),
        (postmark, "postmark", {"header": "X-Token"}, "plugins.postmark.token"),
        (mailgun, "mailgun", {"signing_key": "short"}, "plugins.mailgun.signing_key"),
        (mailgun, "mailgun", {"signing_key": "k" * 32, "reports_for": []}, "reports_for"),
        (mailgun, "mailgun", {"signing_key": "k" * 32, "secret": "x"}, "plugins.mailgun.secret"),
    ],
)
def test_a_wrong_setting_is_named(module: Any, name: str, table: dict[str, Any], said: str):
    with pytest.raises(PluginSettingsError, match=said.replace(".", r"\.")):
        sources(module, name, table)
