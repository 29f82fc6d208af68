"""A campaign's experiment as asked for: its holdout, attribution window, A/B variants
and how they are tested, checked before anything is stored (each refusal a 422 that
names the field)."""

from __future__ import annotations

from typing import NamedTuple

from crmd.campaigns import compose
from crmd.campaigns.schema import CampaignBody
from crmd.campaigns.template import TemplateError, parse_template
from crmd.errors import CrmdError, Unprocessable
from crmd.store.documents import AbTest, Variant

MIN_TEST_RECIPIENTS = 10
"""Recipients each variant of a winner test is expected to have, at least: fewer, and
the winner is a coin toss."""


class InvalidTemplate(CrmdError):
    status, code = 422, "invalid_template"

    def __init__(self, error: TemplateError, field: str = "message") -> None:
        super().__init__(error.message, details={"field": field, "column": error.column})


class Design(NamedTuple):
    holdout: float
    attribution_days: int
    variants: list[Variant]
    ab_test: AbTest | None


def _refuse(message: str, field: str, code: str = "invalid_experiment") -> Unprocessable:
    return Unprocessable(message, code=code, details={"field": field})


def check_templates(message: str, subject: str, html: str, where: str = "") -> None:
    """Each template parses; ``where`` prefixes the field named (``$.variants[1].``)."""
    checks = (
        ("message", message, parse_template),
        ("subject", subject, compose.parse_subject),
        ("html", html, compose.parse_html),
    )
    for field, text, parse in checks:
        try:
            if text or field == "message":
                parse(text)
        except TemplateError as exc:
            raise InvalidTemplate(exc, f"{where}{field}") from None


def design_of(
    body: CampaignBody, defaults: tuple[float, int], track_clicks: bool, audience: int
) -> Design:
    """The experiment ``body`` asks for, the defaults (holdout percent, attribution
    days) filled in; raises 422 naming the field when it cannot be run."""
    holdout = defaults[0] if body.holdout is None else body.holdout
    days = defaults[1] if body.attributionDays is None else body.attributionDays
    if not body.variants:
        if body.abTest is not None:
            raise _refuse("an A/B test needs 2 to 5 variants", "$.variants")
        if not body.message:
            raise _refuse("message is required", "$.message", "missing_message")
        check_templates(body.message, body.subject, body.html)
        return Design(holdout, days, [], None)
    for field in ("message", "subject", "html"):
        if getattr(body, field):
            raise _refuse(f"give the {field} in each variant, not beside them", f"$.{field}")
    for i, variant in enumerate(body.variants):
        check_templates(variant.message, variant.subject, variant.html, f"$.variants[{i}].")
    asked = body.abTest
    mode = asked.mode if asked else "split"
    metric = asked.metric if asked else ("clicks" if track_clicks else "conversions")
    if metric == "clicks" and not track_clicks:
        raise _refuse("the clicks metric needs click tracking (trackClicks)", "$.abTest.metric")
    if mode == "split":  # everyone at once: no test share, no wait
        test = AbTest(mode=mode, testPercent=100.0, waitMinutes=0.0, metric=metric)
    else:
        assert asked is not None
        test = AbTest(
            mode=mode, testPercent=asked.testPercent, waitMinutes=asked.waitMinutes, metric=metric
        )
        if test.testPercent >= 100:
            raise _refuse(
                "a test share of 100 % leaves no one to send the winner to: use mode split",
                "$.abTest.testPercent",
            )
        if not body.draft and body.scheduledAt is None:  # (else checked when it is sent)
            check_test_share(test, holdout, len(body.variants), audience)
    variants = [Variant(message=v.message, subject=v.subject, html=v.html) for v in body.variants]
    return Design(holdout, days, variants, test)


def check_test_share(test: AbTest | None, holdout: float, variants: int, audience: int) -> None:
    """A winner test's share of ``audience`` gives each variant enough recipients and
    leaves some for the winner; 422 naming ``abTest.testPercent`` otherwise."""
    if test is None or test.mode != "winner" or not audience:
        return
    messaged = audience * (1 - holdout / 100)
    rest = messaged * (1 - test.testPercent / 100)
    each = messaged * test.testPercent / 100 / variants
    if rest < 1 or each < MIN_TEST_RECIPIENTS:
        raise _refuse(
            f"a test share of {test.testPercent:g} % of an audience of {audience} (holdout"
            f" {holdout:g} %) gives each variant about {each:.0f} recipients and the winner"
            f" {rest:.0f}: each variant needs at least {MIN_TEST_RECIPIENTS}, and the winner"
            " someone",
            "$.abTest.testPercent",
        )
