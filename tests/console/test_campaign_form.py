"""The new-campaign form's holdout, attribution days and A/B test, read into the API's
body, and the API's field paths read back to the form's fields."""

from __future__ import annotations

import msgspec
import pytest

from crmd.campaigns.schema import AbTestBody, CampaignBody, VariantBody
from crmd.console.campaign_form import body_fields, field_label, form_field, slots_used
from crmd.errors import Unprocessable


def test_empty_numbers_are_the_servers_defaults_and_one_message_is_no_test():
    assert body_fields({"holdout": "", "attributionDays": ""}) == {
        "holdout": None,
        "attributionDays": None,
    }


def test_holdout_and_days_are_read_as_numbers():
    fields = body_fields({"holdout": "12.5 %", "attributionDays": "14"})
    assert fields == {"holdout": 12.5, "attributionDays": 14}


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"holdout": "half"}, "$.holdout"),
        ({"attributionDays": "7.5"}, "$.attributionDays"),
        ({"variants-1-message": "B", "abTest-waitMinutes": "soon"}, "$.abTest-waitMinutes"),
    ],
)
def test_a_number_that_is_not_one_is_refused_naming_its_field(values, field):
    with pytest.raises(Unprocessable) as refused:
        body_fields(values)
    assert refused.value.details == {"field": field}
    assert form_field(field, [0]) == field.removeprefix("$.")


def test_filled_slots_are_variants_after_the_campaigns_own_message():
    values = {
        "message": "Hi {name}",
        "subject": "A subject",
        "variants-2-message": "Hello {name}",
        "variants-2-html": "<p>Hello</p>",
        "variants-4-subject": "only a subject",
        "abTest-mode": "winner",
        "abTest-testPercent": "25",
        "abTest-metric": "revenue",
    }
    assert slots_used(values) == [0, 2, 4]
    fields = body_fields(values)
    assert fields["variants"] == [
        VariantBody(message="Hi {name}", subject="A subject"),
        VariantBody(message="Hello {name}", html="<p>Hello</p>"),
        VariantBody(message="", subject="only a subject"),
    ]
    assert fields["abTest"] == AbTestBody(mode="winner", testPercent=25.0, metric="revenue")
    assert (fields["message"], fields["subject"], fields["html"]) == ("", "", "")
    # The third variant has no message: the API's path names it, the form its slot (E).
    body = CampaignBody(name="x", rule="spend > 0", **fields)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.variants\[2\]\.message"):
        msgspec.convert(msgspec.to_builtins(body), CampaignBody)
    assert form_field("$.variants[2].message", slots_used(values)) == "variants-4-message"
    assert field_label("variants-4-message") == "Variant E, message"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("$.holdout", "holdout"),
        ("$.attributionDays", "attributionDays"),
        ("$.abTest.testPercent", "abTest-testPercent"),
        ("$.abTest.metric", "abTest-metric"),
        ("$.variants[0].subject", "subject"),
        ("$.variants[1].html", "variants-3-html"),
        ("$.variants[1]", "variants-3-message"),
        ("$.variants", "variants"),
        ("message", "message"),
    ],
)
def test_api_paths_name_the_forms_fields(path, field):
    assert form_field(path, [0, 3]) == field
