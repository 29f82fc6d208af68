"""What one recipient is sent: the campaign's templates rendered for them, with their
unsubscribe link.

The text is rendered when the campaign is planned and kept (in the plan, then in the
log) as the message sent. The subject and the HTML body, which may be long, are
rendered as each message is handed to the vendor, from the few customer values they use,
kept with the recipient (``values``): a log never holds a copy of the HTML.

Every message to an address carries the recipient's signed unsubscribe link: in
``OutgoingMessage.unsubscribe_url`` (an e-mail vendor puts it in ``List-Unsubscribe``),
and in the text where the template places ``{unsubscribe_url}``, else on a line of its
own at the end; an HTML body likewise, as a link before ``</body>``.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import msgspec

from crmd.campaigns.links import Catalogue, tracked
from crmd.campaigns.schema import MAX_HTML, MAX_SUBJECT
from crmd.campaigns.template import (
    UNSUBSCRIBE,
    Part,
    Placeholder,
    parse_template,
    render,
    uses_unsubscribe,
)
from crmd.messages import parse_send_key
from crmd.plugins.vendor import OutgoingMessage
from crmd.store.documents import Campaign, Doc
from crmd.suppressions.links import UnsubscribeLinks
from crmd.tracking.tokens import TrackingLinks
from crmd.verp import ReturnPaths

MAX_SUBJECT_SENT = 500
"""A rendered subject is cut here (its values may be long): one header line."""
UNSUBSCRIBE_LINE = "Unsubscribe: "


class Templates(NamedTuple):
    message: list[Part]
    subject: list[Part]
    html: list[Part]
    opens: bool = False
    """The HTML body ends with an open-tracking image."""


LinkMaker = Callable[[int], str]
"""A tracked link's address for one recipient, by the link's index."""


def parse_subject(text: str) -> list[Part]:
    return parse_template(text, what="subject", limit=MAX_SUBJECT, links=False)


def parse_html(text: str) -> list[Part]:
    return parse_template(text, what="HTML body", limit=MAX_HTML)


def templates_of(campaign: Campaign) -> list[Templates]:
    """A stored campaign's templates (checked when it was created), with their links as
    click links when it tracks clicks, and the open image when it tracks opens: one set,
    or one per A/B variant (by its index), their links numbered in one catalogue."""
    texts = [(v.message, v.subject, v.html) for v in campaign.variants] or [
        (campaign.message, campaign.subject, campaign.html)
    ]
    catalogue = Catalogue()
    found = []
    for text in texts:
        templates = templates_for(*text)
        if campaign.trackClicks:
            message, body, _ = tracked(templates.message, templates.html, catalogue)
            templates = templates._replace(message=message, html=body)
        found.append(templates._replace(opens=campaign.trackOpens and bool(templates.html)))
    return found


def links_of(*texts: tuple[str, str]) -> list[str]:
    """The distinct addresses a campaign's (text, HTML) bodies link to, in the order
    of a click link's index (stored with the campaign when it tracks clicks)."""
    catalogue = Catalogue()
    for message, body in texts:
        tracked(parse_template(message), parse_html(body) if body else [], catalogue)
    return catalogue.urls


def variant_of(recipient: Mapping[str, Any]) -> int:
    """The index of the templates a recipient (a chunk's entry, a log) is sent."""
    return int(recipient.get("variant") or 0)


def click_links(tracking: TrackingLinks | None, log_id: str) -> LinkMaker | None:
    """The recipient's click links; None (links as written) without tracking."""
    if tracking is None:
        return None
    return functools.partial(tracking.click_url, parse_send_key(log_id)[0])


def templates_for(message: str, subject: str = "", body: str = "") -> Templates:
    return Templates(
        parse_template(message),
        parse_subject(subject) if subject else [],
        parse_html(body) if body else [],
    )


def unsubscribe_url(
    links: UnsubscribeLinks | None, user: str, campaign: str, customer: Any, email: str
) -> str:
    """The recipient's link; none without an address (nothing to suppress)."""
    if links is None or not email:
        return ""
    return links.url(user, campaign, customer=str(customer))


def text_for(
    templates: Templates, customer: Mapping[str, Any], url: str, link: LinkMaker | None = None
) -> str:
    text = render(templates.message, customer, unsubscribe_url=url, link=link)
    if url and not uses_unsubscribe(templates.message):
        text = f"{text}\n\n{UNSUBSCRIBE_LINE}{url}"
    return text


def fields_used(found: list[Templates]) -> set[str]:
    """The customer fields (top-level) the templates' placeholders read."""
    used = set()
    for templates in found:
        for part in (*templates.message, *templates.subject, *templates.html):
            if isinstance(part, Placeholder) and part.field != UNSUBSCRIBE:
                used.add("name" if part.field == "first_name" else part.field.split(".")[0])
    return used


def values_for(templates: Templates, customer: Mapping[str, Any]) -> Doc:
    """The customer's values the subject and the HTML body use (kept with the recipient
    until the message is handed over)."""
    kept: Doc = {}
    for part in (*templates.subject, *templates.html):
        if not isinstance(part, Placeholder) or part.field == UNSUBSCRIBE:
            continue
        if part.field.startswith("attrs."):
            name = part.field.removeprefix("attrs.")
            attrs = customer.get("attrs") or {}
            if name in attrs:
                kept.setdefault("attrs", {})[name] = attrs[name]
            continue
        field = "name" if part.field == "first_name" else part.field
        if field in customer:
            kept[field] = customer[field]
    return kept


def subject_for(templates: Templates, values: Mapping[str, Any]) -> str:
    """One line: line breaks in a value would start a new header."""
    return " ".join(render(templates.subject, values).split())[:MAX_SUBJECT_SENT]


def html_for(
    templates: Templates,
    values: Mapping[str, Any],
    url: str,
    link: LinkMaker | None = None,
    pixel: str = "",
) -> str:
    """The HTML body; ``pixel``: the open image's address (with ``templates.opens``)."""
    if not templates.html:
        return ""
    body = render(templates.html, values, unsubscribe_url=url, escape=html.escape, link=link)
    end = ""
    if url and not uses_unsubscribe(templates.html):
        end += f'<p><a href="{html.escape(url)}">Unsubscribe</a></p>'
    if pixel and templates.opens:
        end += (
            f'<img src="{html.escape(pixel)}" width="1" height="1" alt="" '
            'style="border:0;width:1px;height:1px">'
        )
    if end:
        close = body.lower().rfind("</body>")
        body = body[:close] + end + body[close:] if close >= 0 else body + end
    return body


def outgoing(
    message_id: str,
    recipient: Doc,
    templates: Templates,
    url: str,
    tracking: TrackingLinks | None = None,
) -> OutgoingMessage:
    """The message handed to the vendor for a planned recipient (or a log sent again).
    Its text was rendered at planning (click links and all); its HTML is rendered now."""
    values = recipient.get("values") or {}
    log_id = parse_send_key(message_id)[0]
    link = click_links(tracking, log_id)
    pixel = tracking.open_url(log_id) if tracking is not None and templates.opens else ""
    return OutgoingMessage(
        message_id,
        recipient.get("recipient", ""),
        recipient.get("phone", ""),
        recipient["message"],
        subject=subject_for(templates, values),
        html=html_for(templates, values, url, link, pixel),
        unsubscribe_url=url,
    )


class Composer:
    """The messages of one campaign, a recipient at a time, as handed to the vendor.
    With ``return_paths`` (the bounces listener is on), a message to a vendor whose
    bounces come back to it carries an envelope sender that names it."""

    def __init__(
        self,
        campaign: Campaign,
        user: str,
        links: UnsubscribeLinks | None,
        return_paths: ReturnPaths | None = None,
    ):
        self.templates = templates_of(campaign)
        self.campaign = str(campaign.id)
        self.user = user
        self.links = links
        self.tracking = links.tracking if links is not None else None
        covered = return_paths is not None and return_paths.covers(campaign.vendor)
        self.return_paths = return_paths if covered else None

    def message(self, message_id: str, recipient: Doc) -> OutgoingMessage:
        """``recipient``: a chunk's entry, or a log sent again."""
        email = recipient.get("recipient", "")
        customer = recipient.get("customerId", "")
        url = unsubscribe_url(self.links, self.user, self.campaign, customer, email)
        templates = self.templates[variant_of(recipient)]
        message = outgoing(message_id, recipient, templates, url, self.tracking)
        if self.return_paths is None:
            return message
        return msgspec.structs.replace(message, return_path=self.return_paths.address(message_id))
