"""What a recipient is sent: subject, text and HTML rendered, and the unsubscribe link
where the template puts it, or added when it does not."""

from __future__ import annotations

import pytest

from crmd.campaigns import compose
from crmd.campaigns.template import TemplateError

URL = "https://crm.example/u/abc.def"
ANA = {
    "_id": "c1",
    "name": "Ana <b>Lima</b>",
    "email": "ana@example.com",
    "attrs": {"tier": "gold"},
}


def templates(
    message: str = "Hi {first_name}", subject: str = "", html: str = ""
) -> compose.Templates:
    return compose.templates_for(message, subject, html)


def test_a_text_without_the_placeholder_gets_the_link_on_a_line_of_its_own():
    assert compose.text_for(templates(), ANA, URL) == f"Hi Ana\n\nUnsubscribe: {URL}"
    placed = templates("Hi {first_name}. Leave: {unsubscribe_url}")
    assert compose.text_for(placed, ANA, URL) == f"Hi Ana. Leave: {URL}"
    assert compose.text_for(templates(), ANA, "") == "Hi Ana"  # no address, no link


def test_the_html_body_escapes_values_and_carries_the_link_before_its_end():
    made = templates(html="<html><body><p>Hi {name}, {attrs.tier}</p></body></html>")
    values = compose.values_for(made, ANA)
    assert values == {"name": "Ana <b>Lima</b>", "attrs": {"tier": "gold"}}
    assert compose.html_for(made, values, URL) == (
        "<html><body><p>Hi Ana &lt;b&gt;Lima&lt;/b&gt;, gold</p>"
        f'<p><a href="{URL}">Unsubscribe</a></p></body></html>'
    )
    placed = templates(html='<a href="{unsubscribe_url}">Stop</a>')
    assert compose.html_for(placed, {}, URL) == f'<a href="{URL}">Stop</a>'
    assert compose.html_for(templates(), {}, URL) == ""  # no HTML body: none sent


def test_the_subject_is_one_line_from_the_values_kept():
    made = templates(subject="Hello {first_name|there}, {attrs.missing|friend}")
    values = compose.values_for(made, {**ANA, "name": "Ana\r\nBcc: x@evil.example"})
    assert values == {"name": "Ana\r\nBcc: x@evil.example"}  # only what the subject uses
    assert compose.subject_for(made, values) == "Hello Ana, friend"
    assert compose.subject_for(made, {}) == "Hello there, friend"


def test_a_message_carries_every_field_to_the_vendor():
    made = templates(subject="For {first_name}", html="<p>{name}</p>")
    entry = {
        "recipient": "ana@example.com",
        "phone": "",
        "message": compose.text_for(made, ANA, URL),
        "values": compose.values_for(made, ANA),
    }
    sent = compose.outgoing("m1", entry, made, URL)
    assert (sent.message_id, sent.recipient, sent.subject) == ("m1", "ana@example.com", "For Ana")
    assert sent.text.endswith(URL) and URL in sent.html and sent.unsubscribe_url == URL


@pytest.mark.parametrize(
    ("subject", "html", "message"),
    [
        ("Bye {unsubscribe_url}", "", "unknown placeholder {unsubscribe_url} at column 5"),
        ("x" * 201, "", "the subject is longer than 200 characters"),
        (
            "",
            "<style>p { color: red }</style>",
            "unknown placeholder {color: red} at column 10 (write '{{' for a literal brace)",
        ),
        ("", "x" * 50_001, "the HTML body is longer than 50000 characters"),
    ],
)
def test_subjects_and_html_bodies_are_checked_like_messages(subject: str, html: str, message: str):
    with pytest.raises(TemplateError) as refused:
        templates(subject=subject, html=html)
    assert refused.value.message.startswith(message)


def test_a_message_to_a_vendor_whose_bounces_come_back_carries_its_own_sender():
    from bson import ObjectId

    from crmd.store.documents import Campaign, decode
    from crmd.verp import ReturnPaths
    from tests.campaigns.conftest import a_campaign

    paths = ReturnPaths.from_secret("s" * 32, "news", "bounces.shop.example")
    key = f"{ObjectId()}.0123456789abcdef:r2"
    recipient = {"recipient": "ana@example.com", "customerId": "c1", "message": "Hi"}
    for vendor, expected in (("smtp", paths.address(key)), ("dummy_vendor", "")):
        campaign = decode(a_campaign(ObjectId(), "sending", vendor=vendor), Campaign)
        message = compose.Composer(campaign, "u1", None, paths).message(key, recipient)
        assert message.return_path == expected
    assert paths.read(paths.address(key)) == key
    smtp = decode(a_campaign(ObjectId(), "sending", vendor="smtp"), Campaign)
    assert compose.Composer(smtp, "u1", None).message(key, recipient).return_path == ""
