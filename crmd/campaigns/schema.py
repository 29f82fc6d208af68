"""A campaign on the wire: the bodies crmd decodes and the answers it encodes.

Shared by the routes (``crmd.campaigns.routes``), the console and the typed client
(``crmd.client``), which imports it without a database or Redis driver: keep it to
msgspec and the other schema modules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

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
MessageText = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
"""(No example: the document's example of a campaign is one without variants, whose
message is beside them.)"""
Subject = Annotated[str, msgspec.Meta(max_length=MAX_SUBJECT)]
Html = Annotated[str, msgspec.Meta(max_length=MAX_HTML)]
Metric = Literal["clicks", "conversions", "revenue"]


class VariantBody(Body):
    """One version of an A/B-tested message: its templates, checked like a campaign's."""

    message: MessageText
    subject: Subject = ""
    html: Html = ""


class AbTestBody(Body):
    """How the variants are sent. ``split``: each recipient gets one, at random, all
    at once. ``winner``: ``testPercent`` of the audience gets one at random; after
    ``waitMinutes`` the variant best by ``metric`` (per recipient: clicked, ordered, or
    revenue) is sent to everyone else."""

    mode: Literal["split", "winner"] = "split"
    testPercent: Annotated[float, msgspec.Meta(ge=1, le=100)] = 20.0
    """The share of the audience (held out or not) in the test."""
    waitMinutes: Annotated[float, msgspec.Meta(ge=0, le=43_200)] = 240.0
    """From the test share's last hand-over to picking the winner (at most 30 days)."""
    metric: Metric = "clicks"


class CampaignBody(Body):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Thanks"])]
    message: Annotated[str, msgspec.Meta(max_length=1000, examples=["Hi {name}, thank you!"])] = ""
    """The text body (required, unless ``variants`` give it); ``{unsubscribe_url}``
    places the unsubscribe link (else it is added on a line of its own at the end)."""
    subject: Subject = ""
    """For e-mail: the subject line, with the same placeholders as the message."""
    html: Html = ""
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
    holdout: Annotated[float, msgspec.Meta(ge=0, le=50)] | None = None
    """The percentage of the audience held out at random (logged ``HELD_OUT``, never
    sent), to measure what the message changed; default ``[campaigns]
    holdout_percent``."""
    attributionDays: Annotated[int, msgspec.Meta(ge=1, le=90)] | None = None
    """Orders this many days after a recipient's message (or, held out, the time it
    would have been sent) count for the campaign; default ``[campaigns]
    attribution_days`` (7)."""
    variants: Annotated[list[VariantBody], msgspec.Meta(min_length=2, max_length=5)] | None = None
    """2 to 5 versions of the message (A, B, ...) instead of ``message``, ``subject``
    and ``html``: an A/B test, run as ``abTest`` says."""
    abTest: AbTestBody | None = None


class TestSend(Body):
    email: Annotated[
        str, msgspec.Meta(min_length=3, max_length=254, examples=["someone@example.com"])
    ]
    variant: Annotated[int, msgspec.Meta(ge=0, le=4)] = 0
    """Which A/B variant to send (0: A)."""


CampaignStatus = Literal[
    "draft", "scheduled", "queued", "planning", "sending", "testing", "sent", "completed",
    "paused", "cancelled", "error",
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
    heldOut: int = 0
    """In the holdout group: not sent to, on purpose (never a failure)."""
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


class Interval(msgspec.Struct):
    """An estimate with its 95 % confidence interval."""

    estimate: float
    low: float
    high: float


class GroupFigures(msgspec.Struct):
    """A group's customers and the orders attributed to them."""

    customers: int
    converted: int
    """Customers with at least one attributed order."""
    orders: int
    revenue: float
    conversionRate: float | None
    """``converted`` over ``customers`` (null with no customer)."""
    revenuePerCustomer: float | None


class Window(msgspec.Struct):
    days: int
    closesAt: Moment | None
    """When the last recipient's attribution window closes (null while sending)."""
    provisional: bool
    """True until then: the figures will still move, and judging them now is peeking."""


class Effect(msgspec.Struct):
    """What the campaign earned, and what it changed: the messaged group against the
    held-out one (lifts per customer, messaged minus held out, with 95 % intervals:
    Newcombe's for conversion, Welch's for revenue; ``incremental*``: a lift times the
    messaged customers). The lifts are null without a holdout, and ``enoughData`` is
    false below ``minimum`` customers in each group or conversions in all."""

    window: Window
    messaged: GroupFigures
    heldOut: GroupFigures
    conversionLift: Interval | None
    revenueLift: Interval | None
    incrementalConversions: Interval | None
    incrementalRevenue: Interval | None
    enoughData: bool
    minimum: dict[str, int]
    """``customers`` per group and ``conversions`` in both, below which there is not
    enough data yet."""
    clicked: GroupFigures | None = None
    """The messaged whose message was clicked (null without click tracking)."""
    notClicked: GroupFigures | None = None


class VariantFigures(msgspec.Struct):
    """An A/B variant, its recipients and how they did."""

    index: int
    label: str
    """A, B, C..."""
    message: str
    subject: str
    html: str
    recipients: int
    """Messaged (held-out customers are nobody's)."""
    clicked: int
    converted: int
    revenue: float
    metric: Interval | None
    """Its figure by the test's metric, per recipient, with its interval."""


class WinnerView(msgspec.Struct):
    variant: int
    label: str
    metric: Metric
    decidedAt: Moment
    figures: list[dict[str, Any]]
    """Each variant's ``recipients`` and ``value`` (an interval) when it was picked."""
    reason: str
    """Why it won, in words."""


class AbTest(msgspec.Struct):
    mode: Literal["split", "winner"]
    testPercent: float
    waitMinutes: float
    metric: Metric
    decideAt: Moment | None
    """When the winner is picked (null until the test share is handed over)."""
    winner: WinnerView | None


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
    holdout: float = 0.0
    attributionDays: int = 7
    revenue: float = 0.0
    """Revenue of the orders attributed to its messaged recipients."""
    effect: Effect | None = None
    variants: list[VariantFigures] = []
    abTest: AbTest | None = None
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
