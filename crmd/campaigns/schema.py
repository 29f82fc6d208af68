"""A campaign on the wire: the bodies crmd decodes and the answers it encodes.

Shared by the routes (``crmd.campaigns.routes``), the console and the typed client
(``crmd.client``), which imports it without a database or Redis driver: keep it to
msgspec and the other schema modules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from crmd.http.describe import Moment
from crmd.http.schema import Body
from crmd.messages import LOG_STATUSES

MAX_SUBJECT = 200
"""Characters of a subject line as written (placeholders and all)."""
MAX_HTML = 50_000
"""Characters of an HTML body as written."""

Text = Annotated[str, msgspec.Meta(max_length=200)]


class CampaignBody(Body):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Thanks"])]
    message: Annotated[
        str, msgspec.Meta(min_length=1, max_length=1000, examples=["Hi {name}, thank you!"])
    ]
    """The text body; ``{unsubscribe_url}`` places the unsubscribe link (else it is
    added on a line of its own at the end)."""
    subject: Annotated[str, msgspec.Meta(max_length=MAX_SUBJECT)] = ""
    """For e-mail: the subject line, with the same placeholders as the message."""
    html: Annotated[str, msgspec.Meta(max_length=MAX_HTML)] = ""
    """For e-mail: an HTML body sent beside the text, with the same placeholders (each
    value HTML-escaped); without ``{unsubscribe_url}`` a link is added at its end."""
    intent: Text = ""
    rule: (
        Annotated[str, msgspec.Meta(max_length=2000, examples=["spend > 1000 AND visits >= 3"])]
        | None
    ) = None
    segmentId: str | None = None
    vendor: Text | None = None
    scheduledAt: datetime | None = None
    draft: bool = False
    """Save without sending; ``POST /campaigns/{id}/send`` sends it later."""
    trackClicks: bool | None = None
    """Send each link the templates write whole (``http(s)://...``) as the recipient's
    click link, which counts the click and redirects to it; default ``[campaigns]
    track_clicks`` (on). The unsubscribe link is never one."""
    trackOpens: bool | None = None
    """Add a 1x1 open-tracking image to the HTML body; default ``[campaigns]
    track_opens`` (off)."""


class TestSend(Body):
    email: Annotated[
        str, msgspec.Meta(min_length=3, max_length=254, examples=["someone@example.com"])
    ]


CampaignStatus = Literal[
    "draft", "scheduled", "queued", "planning", "sending", "sent", "completed", "paused",
    "cancelled", "error",
]  # fmt: skip

LogStatus = Literal[LOG_STATUSES]  # type: ignore[valid-type]


class Bounced(msgspec.Struct):
    hard: int = 0
    """Messages with a permanent failure (status ``BOUNCED``): the address is suppressed."""
    soft: int = 0
    """Messages with a transient failure reported (a full mailbox) and no hard bounce."""


class Opened(msgspec.Struct):
    people: int = 0
    """Messages a person opened (the tracking image was fetched, by no known proxy)."""
    machine: int = 0
    """Messages whose image only a mail privacy proxy or prefetcher fetched: not read,
    as far as anyone knows."""


class CampaignStats(msgspec.Struct):
    """The recipients by where their message is (delivered counts opened, clicked and
    complained; failed counts bounced), then what their messages did: counted from the
    logs with the same pass, so the figures always agree with them.

    The rates are over ``delivered`` (``bounceRate``: over the messages handed over,
    since a bounced message is never delivered), rounded to four places, and null while
    there is nothing to divide by, rather than a 0 that reads as a result."""

    pending: int
    sent: int
    delivered: int
    failed: int
    unknown: int
    cancelled: int
    suppressed: int = 0
    """On the suppression list when the campaign was planned: not sent to."""
    bounced: Bounced = msgspec.field(default_factory=Bounced)
    complained: int = 0
    """Messages whose recipient reported them as spam (the address is suppressed)."""
    opened: Opened = msgspec.field(default_factory=Opened)
    clicked: int = 0
    """Messages with a tracked link clicked at least once."""
    clicks: int = 0
    """Clicks on every tracked link, repeats included."""
    openRate: float | None = None
    """``opened.people`` over ``delivered``."""
    clickRate: float | None = None
    """``clicked`` over ``delivered``."""
    complaintRate: float | None = None
    """``complained`` over ``delivered``."""
    bounceRate: float | None = None
    """``bounced.hard`` over the messages handed over (sent, delivered, failed, unknown)."""


class LinkClicks(msgspec.Struct):
    """A tracked link of the campaign and its clicks."""

    url: str
    index: int
    """Its place among the campaign's links (what a click's token names)."""
    unique: int
    """Messages whose recipient clicked it."""
    total: int
    """Clicks on it, repeats included."""
    share: float | None
    """Its part of every link's clicks (null before the first click)."""


class Campaign(msgspec.Struct):
    id: str
    name: str
    message: str
    subject: str
    html: str
    intent: str
    rule: str
    segmentId: str | None
    vendor: str
    status: CampaignStatus
    audienceSize: int
    stats: CampaignStats
    deliveryRate: float
    links: list[LinkClicks]
    """Its tracked links in the order of their index (empty: it tracks no link)."""
    actions: list[Literal["send", "pause", "resume", "cancel", "retry_failed"]]
    """What an operator may do now (``POST /campaigns/{id}/<action>``, retry_failed
    being ``retry-failed``)."""
    createdAt: Moment
    scheduledAt: Moment | None
    sentAt: Moment | None
    completedAt: Moment | None
    trackClicks: bool = False
    trackOpens: bool = False
    reason: str | UnsetType = UNSET
    """Why it ended in ``error`` (or was refused)."""


class RetriedCampaign(Campaign):
    retried: int = 0
    """Failed messages set to be sent again."""
    queued: int = 0
    """Messages queued to be sent (a chunk counts whole)."""


class CampaignList(msgspec.Struct):
    items: list[Campaign]
    total: int
    cursor: str | None
    """Pass it back as ``cursor`` for the next page; null on the last."""


class LogEntry(msgspec.Struct, omit_defaults=True):
    """A recipient's message. What it did after hand-over (``times`` beyond the status,
    ``opens``, ``machineOpens``, ``clicks``) is left out while there is none, so a log
    answers as it did before they were counted."""

    id: str
    customerId: str
    message: str
    status: LogStatus
    vendorMessageId: str | None
    reason: str | None
    updatedAt: Moment
    times: dict[str, Moment] = {}
    """When each status was first reported (``SOFT_BOUNCED`` too, which never becomes
    the status): what the message did, and when."""
    opens: int = 0
    """Times a person opened it."""
    machineOpens: int = 0
    """Times a mail privacy proxy or prefetcher fetched its image."""
    clicks: dict[str, int] = {}
    """Clicks by link index (``Campaign.links``)."""


class LogPage(msgspec.Struct):
    items: list[LogEntry]
    total: int
    cursor: str | None


class TestSent(msgspec.Struct):
    message: str
    """The message as rendered for that address."""
    vendor: str
    accepted: bool
    vendorMessageId: str | None
    reason: str | None


class Dashboard(msgspec.Struct):
    customers: int
    orders: int
    campaigns: int
    messages: dict[str, int]
    """Messages by log status."""
