"""Campaigns: the list, and the new-campaign form with its preview for real customers,
its suggested messages, and its three ways out (send now, save as draft, schedule)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from crmd.auth.requests import tenant_id, tenant_store
from crmd.campaigns import compose
from crmd.campaigns.schema import CampaignBody
from crmd.campaigns.service import InvalidTemplate, campaign_view
from crmd.campaigns.template import PLACEHOLDERS, UNSUBSCRIBE, TemplateError, parse_template
from crmd.console import stash
from crmd.console.campaign_form import (
    LETTERS,
    PARTS,
    PLACED,
    SLOTS,
    ab_open,
    body_fields,
    check_limits,
    check_templates,
    form_field,
    slot_field,
    slots_used,
    subject_template,
    template_error,
)
from crmd.console.paging import numbered
from crmd.console.web import form, scripted, see_other, unfinished
from crmd.console.web import render as render_page
from crmd.errors import BadRequest, CrmdError, Unprocessable
from crmd.http.admission import expensive
from crmd.http.bodies import json_body
from crmd.http.keys import CAMPAIGNS, HEALTH, SUGGESTERS
from crmd.http.responses import plain_json
from crmd.http.schema import Body
from crmd.segments.counting import COUNTS
from crmd.segments.evaluate import evaluate
from crmd.segments.parse import RuleError, parse_rule
from crmd.segments.query import InvalidRule, rule_now
from crmd.segments.service import preview, segment_by_id
from crmd.store.documents import Campaign, SegmentSummary, decode_all, projection
from crmd.store.tenant import TenantStore
from crmd.store.windows import newest
from crmd.workspaces.guard import audited

routes = web.RouteTableDef()
PREVIEWS = 3
LIST_PAGE = 50
AT_FORMAT = "%Y-%m-%d %H:%M"
AT_HINT = "YYYY-MM-DD HH:MM"
AB_FIELDS = ("abTest-mode", "abTest-testPercent", "abTest-waitMinutes", "abTest-metric")
FORM_FIELDS = (
    *("name", "segment", "rule", "message", "subject", "html", "intent", "vendor", "at"),
    *("holdout", "attributionDays", *AB_FIELDS),
    *(slot_field(slot, part) for slot in SLOTS for part in PARTS),
)
TRACKING = ("track_clicks", "track_opens")
"""The form's two boxes, ``on`` when ticked; ``tracked`` says the form was sent (an
unticked box sends nothing), else they start as ``[campaigns]`` says."""
LIMITS = {
    "name": 200,
    "segment": 64,
    "rule": 2000,
    "message": 1000,
    "subject": 200,
    "html": 16_000,  # a form field's limit (crmd.http.forms); the API takes 50,000
    "intent": 200,
    "vendor": 200,
    "holdout": 20,
    "attributionDays": 20,
    **dict.fromkeys(AB_FIELDS, 20),
    **{f"variants-{slot}-message": 1000 for slot in SLOTS},
    **{f"variants-{slot}-subject": 200 for slot in SLOTS},
    **{f"variants-{slot}-html": 16_000 for slot in SLOTS},
}


class PreviewBody(Body):
    message: str = ""
    subject: str = ""
    segment: str = ""
    rule: str = ""


class SuggestBody(Body):
    objective: str = ""
    intent: str = ""
    segment: str = ""
    rule: str = ""


@routes.get("/campaigns")
async def campaigns(request: web.Request) -> web.Response:
    store = tenant_store(request)
    page = numbered(request, int((await store.tally())["campaigns"]), LIST_PAGE)
    top = await store.highest("campaigns")
    window = await newest(
        store["campaigns"], top, before=await page.start(store["campaigns"], top), limit=LIST_PAGE
    )
    return render_page(
        request,
        "campaigns.html",
        {
            "items": [campaign_view(c) for c in decode_all(window.items, Campaign)],
            "page": page.context(len(window.items), "campaigns", "/campaigns"),
        },
        section="Campaigns",
    )


async def _form_page(request: web.Request, values: dict[str, str], **extra: Any) -> web.Response:
    store = tenant_store(request)
    segments = await newest(
        store["segments"],
        await store.highest("segments"),
        limit=200,
        projection=projection(SegmentSummary),
    )
    ticked = dict(zip(TRACKING, request.app[CAMPAIGNS].tracking, strict=True))
    if values.get("tracked"):
        ticked = {key: values.get(key) == "on" for key in TRACKING}
    error = extra.pop("error", None)
    field_error = None
    if error and error.get("field") in PLACED:  # said beside its field, not at the top
        error, field_error = None, error
    context = {
        "title": "New campaign",
        "error": error,
        "field_error": field_error,
        "slots": [(slot, LETTERS[slot]) for slot in SLOTS],
        "ab_open": ab_open(values, field_error, extra.get("template_error")),
        "form": {key: values.get(key, "") for key in FORM_FIELDS} | ticked,
        "segments": decode_all(segments.items, SegmentSummary),
        "placeholders": [*PLACEHOLDERS, "first_name|there", UNSUBSCRIBE],
        "vendors": list(request.app[CAMPAIGNS].vendors.by_name),
        "previews": [],
        "suggestions": [],
        "rule_error": None,
        "template_error": None,
        "confirm": None,
        **extra,
    }
    return render_page(
        request,
        "campaign_new.html",
        context,
        section="Campaigns",
        status=extra.get("status", 200),
    )


@routes.get("/campaigns/new")
async def new_campaign(request: web.Request) -> web.Response:
    """The form; with ``?form=``, as a POST left it (its preview, its mistakes, the
    question before sending), so that reloading it posts nothing again."""
    token = request.query.get("form", "")
    if token:
        state = await stash.kept(stash_redis(request), tenant_id(request), token)
        if state is None:
            return see_other("/campaigns/new", "That form is more than an hour old: start again.")
        return await _form_page(request, state.pop("values"), **state)
    return await _form_page(request, {"segment": request.query.get("segment", "")[:64]})


def stash_redis(request: web.Request) -> Any:
    return request.app[HEALTH].redis


async def _back_to_form(request: web.Request, values: dict[str, str], **state: Any) -> web.Response:
    """Redirect to the form as this POST leaves it (Post/Redirect/Get)."""
    token = await stash.keep(stash_redis(request), tenant_id(request), {"values": values, **state})
    return see_other(f"/campaigns/new?form={token}")


async def audience_rule(store: TenantStore, segment: str, rule: str) -> str:
    """The rule of the chosen segment, else the rule written; 422 when neither."""
    if segment:
        return (await segment_by_id(store, segment)).rule
    if not rule.strip():
        raise Unprocessable(
            "choose a segment or write a rule", code="missing_audience", details={"field": "rule"}
        )
    return rule


async def previews(
    request: web.Request, message: str, rule: str, subject: str = ""
) -> list[dict[str, str]]:
    """The message as the newest few customers of the audience will read it, subject
    and unsubscribe line included (found by reading a bounded stretch of customers, not
    by a query over all of them)."""
    store = tenant_store(request)
    user = tenant_id(request)
    templates = compose.Templates(parse_template(message), subject_template(subject), [])
    node = parse_rule(rule)
    now = rule_now()
    found = await newest(
        store["customers"],
        await store.highest("customers"),
        limit=PREVIEWS,
        keep=lambda doc: evaluate(node, doc, now),
    )
    links = request.app[CAMPAIGNS].links
    shown = []
    for c in found.items:
        url = compose.unsubscribe_url(links, user, "preview", c["_id"], c.get("email", ""))
        shown.append(
            {
                "name": c.get("name", ""),
                "email": c.get("email", ""),
                "subject": compose.subject_for(templates, c) if subject else "",
                "text": compose.text_for(templates, c, url),
            }
        )
    return shown


def _at(text: str) -> datetime:
    """The form's "Send at": ``YYYY-MM-DD HH:MM`` (or with a ``T``, as a browser's
    date-time field sends it), in UTC."""
    try:
        moment = datetime.strptime(text.strip().replace("T", " ")[:16], AT_FORMAT)
    except ValueError:
        raise Unprocessable(
            f"give the date and time to send at, as {AT_HINT} (UTC)",
            code="invalid_body",
            details={"field": "at"},
        ) from None
    moment = moment.replace(tzinfo=UTC)
    if moment <= datetime.now(UTC):
        raise Unprocessable(
            "choose a time in the future to schedule", code="invalid_body", details={"field": "at"}
        )
    return moment


async def _audience_said(request: web.Request, values: dict[str, str], rule: str) -> dict[str, Any]:
    """The question before sending: how many customers it goes to."""
    if values["segment"]:
        segment = await segment_by_id(tenant_store(request), values["segment"])
        size, complete = segment.audienceSize, segment.audienceSize is not None
    else:
        found = await preview(request.app[COUNTS], tenant_store(request), rule)
        size, complete = found.count.size, found.count.complete
    if size is None:
        said = "its customers are still being counted"
    else:
        said = f"{size:,} customer{'' if size == 1 else 's'}" + ("" if complete else " so far")
    return {"size": size, "said": said}


@routes.post("/campaigns")
async def create(request: web.Request) -> web.StreamResponse:
    """Every button of the form posts here (the script handles preview and suggest in
    place, but they work without it). Each answers a redirect: to the campaign, or
    back to the form as it was left (``new_campaign``). "Send now" asks first, saying
    the audience's size; the form's "Send to N customers" answers."""
    fields = await form(request)
    values = {key: fields.get(key, "").strip() for key in (*FORM_FIELDS, *TRACKING, "tracked")}
    for key, limit in LIMITS.items():
        if len(values[key]) > limit:
            raise BadRequest(f"{key} is longer than {limit} characters", details={"field": key})
    action = fields.get("action", "send")
    store = tenant_store(request)
    try:
        rule = await audience_rule(store, values["segment"], values["rule"])
        if action == "preview":
            shown = await previews(request, values["message"], rule, values["subject"])
            return await _back_to_form(request, values, previews=shown)
        if action == "suggest":
            found, _ = await request.app[SUGGESTERS].messages(
                values["name"], values["intent"], rule, 3
            )
            return await _back_to_form(request, values, suggestions=found)
        if action not in ("send", "confirmed-send", "draft", "schedule"):
            raise BadRequest("unknown action")
        given: dict[str, Any] = {
            "name": values["name"],
            "message": values["message"],
            "subject": values["subject"],
            "html": values["html"],
            "intent": values["intent"],
            "rule": None if values["segment"] else rule,
            "segmentId": values["segment"] or None,
            "vendor": values["vendor"] or None,
            "scheduledAt": _at(values["at"]) if action == "schedule" else None,
            "draft": action == "draft",
            "trackClicks": values["track_clicks"] == "on" if values["tracked"] else None,
            "trackOpens": values["track_opens"] == "on" if values["tracked"] else None,
        }
        body = CampaignBody(**(given | body_fields(values)))
        check_limits(body, slots_used(values))
        check_templates(body)
        if action == "confirmed-send" and not await _answered(request, values, fields):
            action = "send"  # the form changed since the question (or no question was)
        if action == "send":  # not yet: first the question, with the audience's size
            parse_rule(rule)
            confirm = await _audience_said(request, values, rule)
            confirm["confirmed"] = stash.confirmation(values, confirm["said"])
            return await _back_to_form(request, values, confirm=confirm)
        if action == "confirmed-send" and not await stash.first_use(
            stash_redis(request), tenant_id(request), fields.get("confirmed", "")
        ):
            return see_other("/campaigns", "That campaign was sent already.")
        doc = await request.app[CAMPAIGNS].create(store, body)
    except (InvalidRule, RuleError) as exc:
        rule_error: dict[str, Any] = {"message": exc.message, "column": exc.column}
        return await _back_to_form(request, values, rule_error=rule_error)
    except TemplateError as exc:  # the message's, parsed for the preview
        return await _back_to_form(request, values, template_error=template_error(exc, values))
    except CrmdError as exc:
        if exc.status == 404:  # another user's segment, or a gone one: not found here
            raise
        if exc.code == InvalidTemplate.code:  # a template's (this form's check or the API's)
            return await _back_to_form(request, values, template_error=template_error(exc, values))
        said: dict[str, Any] = {"message": exc.message}
        path = exc.details.get("field") if isinstance(exc.details, dict) else None
        if isinstance(path, str):  # beside the field it names (the form's own or the API's)
            said["field"] = form_field(path, slots_used(values))
        return await _back_to_form(request, values, error=said)
    done = {
        "confirmed-send": "is being sent",
        "draft": "is saved as a draft",
        "schedule": "is scheduled",
    }
    audited(request, str(doc.id))
    return see_other(f"/campaigns/{doc.id}", f"{doc.name} {done[action]}.")


async def _answered(request: web.Request, values: dict[str, str], fields: Any) -> bool:
    """Whether a "Send to N customers" answers the question about this very form: the
    same values and the same audience as it was asked with."""
    confirmed = fields.get("confirmed", "")
    said = fields.get("said", "")
    return bool(confirmed) and confirmed == stash.confirmation(values, said)


@routes.post("/campaigns/preview")
@scripted
@expensive
async def preview_as_you_type(request: web.Request) -> web.Response:
    body = await json_body(request, PreviewBody)
    if len(body.message) > LIMITS["message"] or len(body.rule) > LIMITS["rule"]:
        raise BadRequest("the message or the rule is too long")
    store = tenant_store(request)
    if not body.message.strip():
        return plain_json({"previews": []})
    try:
        rule = await audience_rule(store, body.segment[:64], body.rule)
        shown = await previews(request, body.message, rule, body.subject[: LIMITS["subject"]])
    except (TemplateError, RuleError) as exc:  # still being typed: an answer, not a failure
        field = "message" if isinstance(exc, TemplateError) else "rule"
        return plain_json(unfinished(exc.message, exc.column) | {"field": field})
    except InvalidTemplate as exc:  # the subject's
        said = unfinished(exc.message, exc.details["column"])
        return plain_json(said | {"field": exc.details["field"]})
    except Unprocessable as exc:
        return plain_json(unfinished(exc.message))
    return plain_json({"previews": shown})


@routes.post("/campaigns/suggest")
@scripted
async def suggest_messages(request: web.Request) -> web.Response:
    body = await json_body(request, SuggestBody)
    if any(len(v) > LIMITS["rule"] for v in (body.objective, body.intent, body.rule)):
        raise BadRequest("a field is too long")
    store = tenant_store(request)
    rule = ""
    if body.segment or body.rule.strip():
        rule = await audience_rule(store, body.segment[:64], body.rule)
        try:
            parse_rule(rule)
        except RuleError as exc:
            raise InvalidRule(exc) from None
    try:
        found, source = await request.app[SUGGESTERS].messages(
            body.objective[:500], body.intent[:500], rule, 3
        )
    except Unprocessable as exc:
        return plain_json(unfinished(exc.message))
    return plain_json({"variants": found, "source": source})
