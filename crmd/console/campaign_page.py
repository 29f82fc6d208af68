"""One campaign: its figures live while it runs, the deliveries chart, what its messages
did (bounces, complaints, opens, clicks, with their chart and its links' clicks), its
effect (messaged against held out, with the intervals drawn) and its A/B test, the AI
summary, the actions its lifecycle allows now, a test send, and the per-recipient
log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import msgspec
from aiohttp import web

from crmd.ai.service import campaign_summary
from crmd.auth.requests import tenant_store
from crmd.campaigns.service import campaign_by_id, campaign_view
from crmd.campaigns.stats import GROUPS
from crmd.console.chart import charts_of
from crmd.console.effect_panel import effect_panel, variants_panel
from crmd.console.formats import money
from crmd.console.live import follow
from crmd.console.paging import DASH, numbered
from crmd.console.web import CONSOLE, form, query_number, render, see_other
from crmd.emails import InvalidEmail, normalise_email
from crmd.errors import BadRequest, CrmdError
from crmd.http.admission import asked_for, expensive, expensive_when
from crmd.http.keys import CAMPAIGNS, SUGGESTERS
from crmd.messages import LOG_STATUSES
from crmd.store.documents import Campaign, LogLine, decode, decode_all, projection
from crmd.store.windows import FILTERED_SCAN, newest
from crmd.workspaces.guard import audited

routes = web.RouteTableDef()
FIGURES = (
    ("pending", "Pending"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
    ("unknown", "Unknown"),
    ("suppressed", "Suppressed"),
    ("heldOut", "Held out"),
)
"""The recipients by where their message is (held out: only with a holdout)."""
DONE = (
    ("bouncedHard", "Hard bounced", "bounceRate", "of handed over"),
    ("bouncedSoft", "Soft bounced", None, "not suppressed"),
    ("complained", "Complained", "complaintRate", "of delivered"),
    ("openedPeople", "Opened", "openRate", "of delivered"),
    ("openedMachine", "Opened by machines only", None, "not counted as opened"),
    ("clicked", "Clicked", "clickRate", "of delivered"),
    ("clicks", "Clicks", None, "on every link"),
)
"""What the messages did, as the page shows it: (figure, label, its rate, what the rate
or the figure is of)."""
ACTIONS = {
    "send": "Send now",
    "pause": "Pause",
    "resume": "Resume",
    "cancel": "Cancel",
    "retry_failed": "Retry failed",
}
SETTLED = ("completed", "cancelled", "error", "draft", "scheduled")
LOG_PAGE = 50


RECEIPTS_AWAITED = timedelta(minutes=10)


def _live(campaign: dict[str, Any]) -> bool:
    """Worth following: it is moving, or it finished lately and sent messages still
    await their receipts."""
    status = campaign["status"]
    if status not in SETTLED:
        return True
    completed = campaign.get("completedAt")
    return (
        status == "completed"
        and campaign["stats"]["sent"] > 0
        and completed is not None
        and datetime.now(UTC) - completed.replace(tzinfo=UTC) < RECEIPTS_AWAITED
    )


def _refresh(status: str) -> int | None:
    """Seconds between reloads without script: often while it sends, seldom while an
    A/B test waits its hours for a winner, never once it rests."""
    if status in (*SETTLED, "paused"):
        return None
    return 60 if status == "testing" else 3


def told_of(campaign: dict[str, Any]) -> dict[str, int]:
    """The figures a summary tells of (where the recipients' messages are), kept with
    it to tell when it is out of date."""
    return {k: campaign["stats"][k] for k in GROUPS}


def summary_basis(campaign: dict[str, Any]) -> dict[str, int]:
    """What a summary tells of, kept with it to tell when it is out of date: where the
    messages are and, once there is an effect, the orders attributed to each group and
    whether the window was open (a summary written while it was is stale after)."""
    basis = told_of(campaign)
    effect = campaign.get("effect")
    if effect:
        effect = msgspec.to_builtins(effect)
        for group in ("messaged", "heldOut"):
            basis[f"{group}Converted"] = int(effect[group]["converted"])
            basis[f"{group}Orders"] = int(effect[group]["orders"])
        basis["provisional"] = int(bool(effect["window"]["provisional"]))
    return basis


def done_figures(campaign: dict[str, Any]) -> dict[str, int | str]:
    """What the messages did, flat and as the page writes it (rates as percentages, or
    a dash while there is nothing to divide by): the live figures' values too."""
    got = campaign["stats"]
    flat: dict[str, int | str] = {
        "bouncedHard": got["bounced"]["hard"],
        "bouncedSoft": got["bounced"]["soft"],
        "complained": got["complained"],
        "openedPeople": got["opened"]["people"],
        "openedMachine": got["opened"]["machine"],
        "clicked": got["clicked"],
        "clicks": got["clicks"],
    }
    for _, _, rate, _ in DONE:
        if rate:
            flat[rate] = DASH if got[rate] is None else f"{got[rate]:.1%}"
    return flat


def tracked(campaign: dict[str, Any]) -> bool:
    """Opens and clicks are worth a chart: it tracks opens or has tracked links, or
    something was opened or clicked (a campaign that tracks neither shows neither)."""
    got = campaign["stats"]
    return (
        bool(campaign["links"] or campaign.get("trackOpens"))
        or got["opened"]["people"] + got["clicked"] > 0
    )


def _actions(campaign: dict[str, Any]) -> list[tuple[str, str]]:
    """The buttons for the actions the campaign allows now (``operator_actions``
    leaves out `Retry failed` when nothing failed)."""
    return [(a.replace("_", "-"), ACTIONS[a]) for a in campaign["actions"] if a in ACTIONS]


@routes.get("/campaigns/{id}")
@expensive_when(asked_for("status"))
async def campaign(request: web.Request) -> web.Response:
    store = tenant_store(request)
    doc = await campaign_by_id(store, request.match_info["id"])
    view = campaign_view(doc)
    status = request.query.get("status", "").upper()[:20]
    if status and status not in LOG_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(LOG_STATUSES)}")
    after = query_number(request, "after")
    top = int(doc.lastSeq or doc.audienceSize or 0)
    numbered_page = None
    if not status:  # every recipient has a number from 1: pages by number
        numbered_page = numbered(request, top, LOG_PAGE)
        after = numbered_page.before(top)
    log = await newest(
        store["communication_log"],
        top,
        before=after,
        limit=LOG_PAGE,
        where={"campaignId": str(doc.id)},
        keep=(lambda d: d["status"] == status) if status else None,
        max_scan=FILTERED_SCAN,
        number="seq",
        projection=projection(LogLine),
    )
    charts = await charts_of(store, doc, view["stats"]["delivered"])
    currency = request.app[CONSOLE].currency

    def written(value: Any) -> str:
        return money(value, currency)

    said = f"{len(log.items)} recipients"
    if status:
        said = f"{len(log.items)} {status.lower()}, among {log.scanned:,} recipients looked at"
    summary = None
    if doc.summary is not None:  # written before the figures last changed: say so
        told = doc.summary.stats
        stale = told is not None and told != summary_basis(view)  # (older ones kept none)
        summary = {**msgspec.structs.asdict(doc.summary), "stale": stale}
    return render(
        request,
        "campaign.html",
        {
            "title": doc.name,
            "c": view,
            "live": _live(view),
            "refresh": _refresh(view["status"]),
            "effect": effect_panel(view, written),
            "ab": variants_panel(view, written),
            "figures": FIGURES,
            "chart": charts.deliveries,
            "done": DONE,
            "done_figures": done_figures(view),
            "engagement_chart": charts.engagement if tracked(view) else None,
            "actions": _actions(view),
            "summary": summary,
            "log": decode_all(log.items, LogLine),
            "log_status": status,
            "log_statuses": LOG_STATUSES,
            "log_page": {"first": after is None, "next": log.next_before, "said": said},
            "log_numbered": (
                numbered_page.context(len(log.items), "recipients", f"/campaigns/{view['id']}")
                if numbered_page
                else None
            ),
        },
        section="Campaigns",
    )


@routes.get("/campaigns/{id}/events")
async def campaign_events(request: web.Request) -> web.StreamResponse:
    store = tenant_store(request)
    doc = await campaign_by_id(store, request.match_info["id"])

    drawn: dict[str, Any] = {}  # the chart, redrawn only when the figures move

    async def figures() -> tuple[dict[str, Any], bool]:
        found = await store["campaigns"].find_one({"_id": doc.id})
        assert found is not None
        now = decode(found, Campaign)
        view = campaign_view(now)
        if drawn.get("stats") != view["stats"]:  # (it reads the campaign's log)
            charts = await charts_of(store, now, view["stats"]["delivered"])
            drawn.update(stats=view["stats"], chart=str(charts.deliveries))
            drawn["engagement"] = str(charts.engagement) if tracked(view) else ""
        data = {
            # figures and status from one read: they agree
            "figures": {**told_of(view), **done_figures(view)},
            "status": view["status"],
            "chart": drawn["chart"],
            "engagementChart": drawn["engagement"],
        }
        return data, not _live(view)

    return await follow(request, figures)


@routes.post("/campaigns/{id}/{action:send|pause|resume|cancel|retry-failed}")
async def act(request: web.Request) -> web.StreamResponse:
    await form(request)
    campaign_id = request.match_info["id"]
    action = request.match_info["action"]
    service = request.app[CAMPAIGNS]
    store = tenant_store(request)
    done = {
        "send": "Sending",
        "pause": "Paused",
        "resume": "Resumed",
        "cancel": "Cancelled",
        "retry-failed": "Retrying the failed messages",
    }
    try:
        if action == "retry-failed":
            await service.retry_failed(store, campaign_id)
        else:
            await getattr(service, action)(store, campaign_id)
    except CrmdError as exc:
        if exc.status == 404:
            raise
        return see_other(f"/campaigns/{quote(campaign_id)}", exc.message, problem=True)
    audited(request, campaign_id)
    return see_other(f"/campaigns/{quote(campaign_id)}", f"{done[action]}.")


@routes.post("/campaigns/{id}/test")
async def test_send(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    campaign_id = quote(request.match_info["id"])
    try:
        email = normalise_email(fields.get("email", "")[:320])
    except InvalidEmail:
        email = ""
    if not email:
        return see_other(
            f"/campaigns/{campaign_id}", "Give an email address to send the test to.", problem=True
        )
    variant = fields.get("variant", "0")
    if not (variant.isdigit() and len(variant) == 1):
        return see_other(f"/campaigns/{campaign_id}", "Choose a variant to test.", problem=True)
    try:
        answer = await request.app[CAMPAIGNS].test_send(
            tenant_store(request), request.match_info["id"], email, int(variant)
        )
    except CrmdError as exc:
        if exc.status == 404:
            raise
        return see_other(f"/campaigns/{campaign_id}", exc.message, problem=True)
    audited(request, request.match_info["id"])
    if answer["accepted"]:
        said = f"Test sent to {email} through {answer['vendor']}: {answer['message']}"
    else:
        said = f"{answer['vendor']} refused the test to {email}: {answer['reason']}"
    return see_other(f"/campaigns/{campaign_id}", said, problem=not answer["accepted"])


@routes.post("/campaigns/{id}/summary")
@expensive
async def summarise(request: web.Request) -> web.StreamResponse:
    await form(request)
    store = tenant_store(request)
    doc = await campaign_by_id(store, request.match_info["id"])
    where = f"/campaigns/{doc.id}"
    try:
        text, source = await campaign_summary(store, request.app[SUGGESTERS], doc)
    except CrmdError as exc:
        return see_other(where, exc.message, problem=True)
    summary = {
        "summary": text,
        "source": source,
        "at": datetime.now(UTC),
        "stats": summary_basis(campaign_view(doc)),  # what it told of: stale once it moves
    }
    await store["campaigns"].update_one({"_id": doc.id}, {"$set": {"summary": summary}})
    return see_other(where)
