"""Which links a campaign's templates track, and the signed tokens that name them."""

from __future__ import annotations

import html

import pytest
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from crmd.campaigns import compose
from crmd.campaigns.links import MAX_LINKS, tracked
from crmd.campaigns.template import Link
from crmd.messages import message_id
from crmd.store import documents
from crmd.tracking.tokens import TrackingLinks, today
from tests.campaigns.conftest import a_campaign
from tests.conftest import examples

CAMPAIGN = "0123456789abcdef01234567"
LOG = message_id(CAMPAIGN, "customer-1")
TRACKER = TrackingLinks(b"k" * 32, "https://crm.example")


def links_in(message: str, body: str = "") -> tuple[list[object], list[object], list[str]]:
    made = compose.templates_for(message, "", body)
    return tracked(made.message, made.html)  # type: ignore[return-value]


def test_whole_links_in_the_text_are_tracked_and_the_same_address_is_one_link():
    text, _, urls = links_in(
        "Sale at https://shop.example/sale. Again: https://shop.example/sale, "
        "and (https://shop.example/b?x=1&y=2) now"
    )
    assert urls == ["https://shop.example/sale", "https://shop.example/b?x=1&y=2"]
    assert [p.index for p in text if isinstance(p, Link)] == [0, 0, 1]
    made = compose.Templates(text, [], [])
    rendered = compose.text_for(made, {}, "", lambda i: TRACKER.click_url(LOG, i))
    assert "shop.example" not in rendered and rendered.count("https://crm.example/c/") == 3
    assert rendered.startswith("Sale at https://crm.example/c/") and ". Again: " in rendered
    assert compose.text_for(made, {}, "") == (  # a preview or a test send: as written
        "Sale at https://shop.example/sale. Again: https://shop.example/sale, "
        "and (https://shop.example/b?x=1&y=2) now"
    )


def test_a_link_that_a_value_completes_or_the_unsubscribe_link_is_never_tracked():
    text, body, urls = links_in(
        "Code: https://shop.example/c?code={attrs.code} bye {unsubscribe_url}",
        '<a href="https://shop.example/p/{attrs.sku}">x</a> <a href="{unsubscribe_url}">stop</a>',
    )
    assert urls == []
    assert not any(isinstance(p, Link) for p in [*text, *body])


def test_html_links_are_read_through_their_entities_and_written_back_as_they_were():
    _, body, urls = links_in(
        "Hi",
        "<p><a href=\"https://shop.example/?a=1&amp;b=2\">A</a> <A HREF='http://x.example'>B</A>"
        ' <a href="mailto:a@b.example">m</a> <img src="https://cdn.example/i.png"></p>',
    )
    assert urls == ["https://shop.example/?a=1&b=2", "http://x.example"]
    made = compose.Templates([], [], body)
    untracked = compose.html_for(made, {}, "")
    assert 'href="https://shop.example/?a=1&amp;b=2"' in untracked
    assert "https://cdn.example/i.png" in untracked  # an image is not a link
    sent = compose.html_for(made, {}, "", link=lambda i: TRACKER.click_url(LOG, i))
    assert "shop.example" not in sent and sent.count("https://crm.example/c/") == 2


def test_past_the_limit_links_are_sent_as_they_are():
    message = " ".join(f"https://x.example/{i}" for i in range(MAX_LINKS + 5))
    _, _, urls = links_in(message[:1000])
    assert len(urls) <= MAX_LINKS


def test_a_token_names_its_message_and_link_and_nothing_else_reads():
    token = TRACKER.token("c", LOG, 3)
    assert TRACKER.read("c", token) == (LOG, 3, today())
    assert TRACKER.read("o", token) is None  # a click token is no open token
    assert TRACKER.read("c", token[:-2]) is None  # cut short
    other = TrackingLinks(b"z" * 32, "https://crm.example")
    assert other.read("c", token) is None  # made with another secret
    legacy = "ab" * 12
    assert TRACKER.read("o", TRACKER.token("o", legacy)).log_id == legacy  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        TRACKER.token("c", "test-0123")  # a test send has no log: no tracking


def test_a_token_expires_after_the_days_it_is_good_for():
    short = TrackingLinks(b"k" * 32, "https://crm.example", days=30)
    made = short.token("c", LOG, 1, day=today() - 31)
    assert short.read("c", made) is None
    assert short.read("c", short.token("c", LOG, 1, day=today() - 30)) is not None
    assert short.read("c", short.token("c", LOG, 1, day=today() + 5)) is None


@settings(max_examples=examples(200))
@given(st.integers(0, 2**16 - 1), st.data())
def test_any_changed_character_breaks_a_token(link: int, data: st.DataObject):
    token = TRACKER.token("c", LOG, link)
    at = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from("ABCabc019_-").filter(lambda c: c != token[at]))
    changed = token[:at] + char + token[at + 1 :]
    assert TRACKER.read("c", changed) is None
    assert TRACKER.read("c", token) == (LOG, link, today())


def test_a_template_keeps_its_html_escaping_around_tracked_links():
    made = compose.templates_for("Hi", "", '<a href="https://s.example/?q=&quot;x&quot;">go</a>')
    _, body, urls = tracked(made.message, made.html)
    assert urls == ['https://s.example/?q="x"']
    assert html.unescape(compose.html_for(compose.Templates([], [], body), {}, "")) == (
        '<a href="https://s.example/?q="x"">go</a>'
    )


def test_a_tracked_campaigns_html_gets_click_links_and_the_open_image_before_its_end():
    body = '<html><body><a href="https://shop.example/x">x</a></body></html>'
    raw = a_campaign(ObjectId(CAMPAIGN), "sent", html=body, trackClicks=True, trackOpens=True)
    [made] = compose.templates_of(documents.decode(raw, documents.Campaign))
    recipient = {"recipient": "a@x.io", "message": "Hi"}
    sent = compose.outgoing(LOG, recipient, made, "https://crm.example/u/t", TRACKER)
    assert sent.html.index('href="https://crm.example/c/') < sent.html.index("/u/t")
    assert sent.html.index("/u/t") < sent.html.index('<img src="https://crm.example/o/')
    assert sent.html.endswith('style="border:0;width:1px;height:1px"></body></html>')
    token = sent.html.split("/o/")[1].split('"')[0]
    assert TRACKER.read("o", token) == (LOG, 0, today())
    preview = compose.outgoing(LOG, recipient, made, "")  # no tracking: as written
    assert "https://shop.example/x" in preview.html and "/o/" not in preview.html


def test_an_address_with_brackets_is_tracked_whole_and_a_sentences_bracket_is_not_in_it():
    _, _, urls = links_in(
        "Read https://en.wikipedia.org/wiki/Mercury_(planet) today "
        "(or https://shop.example/a_(b)), and (https://shop.example/c)."
    )
    assert urls == [
        "https://en.wikipedia.org/wiki/Mercury_(planet)",
        "https://shop.example/a_(b)",
        "https://shop.example/c",
    ]


def test_only_a_persons_links_are_click_links_not_stylesheets_or_data_attributes():
    page = (
        '<html><head><link rel="stylesheet" href="https://fonts.example/css"></head><body>'
        '<div data-href="https://shop.example/x">Hi</div>'
        '<a title="{first_name}" href="https://shop.example/y">y</a>'
        '<area shape="rect" href="https://shop.example/z"><a\nhref="https://shop.example/w">w</a>'
        "</body></html>"
    )
    _, body, urls = links_in("Hi", page)
    assert urls == ["https://shop.example/y", "https://shop.example/z", "https://shop.example/w"]
    assert len([p for p in body if isinstance(p, Link)]) == 3


def test_an_address_with_a_line_break_or_a_space_in_it_goes_as_written():
    # A Location header cannot carry one: the redirect would fail, not the link.
    _, body, urls = links_in(
        "Hi", '<a href="https://shop.example/sale&#13;&#10;Set-Cookie: a=b">Sale</a>'
    )
    assert urls == [] and not any(isinstance(p, Link) for p in body)
