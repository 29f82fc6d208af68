"""The permission check, in one middleware for the API and the console alike: the route's
rule from ``crmd.workspaces.roles``, the caller's permissions, and an audit entry for
what the rule names (done or refused).

An API call is recorded as done when it succeeds (an answer under 400). A console form
answers a redirect or the form again whether or not it did anything (a count, a preview,
a refusal shown beside its field), so it is recorded as done only when its handler says
what it changed: ``audited(request, object_id)``, at the place the change is made."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import StaticResource

from crmd.errors import CrmdError, Forbidden
from crmd.http.compat import ALIASES
from crmd.http.describe import PUBLIC as MARKED_PUBLIC
from crmd.http.keys import ACCESS, CALLER, DATABASE
from crmd.workspaces import audit
from crmd.workspaces.access import Caller
from crmd.workspaces.roles import API, CONSOLE, PERSON, PUBLIC, Rule

log = structlog.get_logger(__name__)
OPEN = Rule(PUBLIC)
WORKSPACE_PATHS = "/api/v1/workspaces/"
_ALIASED = {(a.method, a.path): a.of for a in ALIASES}
PAST = {
    "send": "sent",
    "pause": "paused",
    "resume": "resumed",
    "cancel": "cancelled",
    "retry-failed": "retried",
    "activate": "activated",
    "archive": "archived",
}
"""A console route's verb (``/campaigns/{id}/{action}``) as the audit log names what it
did, the name the API's route for it has (``campaign.sent``)."""
AUDITED: web.RequestKey[tuple[str, tuple[str, ...]]] = web.RequestKey("audited")
OBJECT_PARAMS = ("user", "invitation", "id", "email")
"""Path parameters that name the object of an action, in the order they are looked for."""
ANSWER_IDS = ("id", "uploadId", "workspaceId", "email")
"""An API answer's fields that name what it made, in the order they are looked for."""
NOT_FIELDS = frozenset({"csrf"})
"""A console form's CSRF token: the form's, not a field of what it changes."""
UNLISTED = frozenset({"/healthz", "/readyz", "/metrics", "/favicon.ico"})
"""Served to anyone, outside the API and the console (the health checks, the metrics
scrape with its own token)."""


def audited(request: web.Request, object_id: str, *also: str) -> None:
    """Say that this request changed ``object_id`` (a console form must, to be recorded;
    an API handler may, when its path and answer do not name the object). ``also``: more
    actions it did (a flow saved and activated at once), recorded beside the route's."""
    request[AUDITED] = (object_id, also)


def action_name(rule: Rule, info: dict[str, str]) -> str:
    """The rule's audit name, with the path's parameters in it (past tense)."""
    if "{" not in rule.audit:
        return rule.audit
    return rule.audit.format(**{name: PAST.get(value, value) for name, value in info.items()})


def rule_of(method: str, path: str) -> Rule | None:
    """The rule of a route (its method and canonical path), ``None`` if it has none."""
    if method == "HEAD":
        method = "GET"
    key = _ALIASED.get((method, path), (method, path))
    return API.get(key) or CONSOLE.get(key)


def route_rule(request: web.Request) -> Rule | None:
    info = request.match_info
    route = info.route
    resource = route.resource
    if info.http_exception is not None or resource is None or isinstance(resource, StaticResource):
        return OPEN  # a 404 or 405 to anyone, or a stylesheet
    if resource.canonical in UNLISTED or request.method == "OPTIONS":
        return OPEN
    found = rule_of(request.method, resource.canonical)
    if found is None and getattr(route.handler, MARKED_PUBLIC, False):
        return OPEN  # a route added outside the table, marked open by its author
    return found


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    rule = route_rule(request)
    if rule is None:  # a route nobody gave a rule: refused, and the tests say which
        raise Forbidden(f"{request.method} {request.path} has no permission rule")
    if rule.needs == PUBLIC:
        return await handler(request)
    caller = request.get(CALLER)
    if caller is None:  # the console's open pages (sign-in) are PUBLIC; nothing else
        raise Forbidden("sign in first")
    if request.path.startswith(WORKSPACE_PATHS) and "id" in request.match_info:
        caller = await _in_workspace(request, caller, request.match_info["id"])
    try:
        _check(caller, rule.needs)
    except Forbidden as exc:
        if rule.audit and caller.workspace:
            await _record(request, caller, rule, refused=exc.message)
        raise
    try:
        response = await handler(request)
    except Forbidden as exc:  # a handler's own check (activating a flow needs "send")
        if rule.audit and caller.workspace and _lacks_permission(exc):
            await _record(request, caller, rule, refused=exc.message)
        raise
    if rule.audit and _done(request, response):
        # The handler may have moved the caller (accepting an invitation: into the
        # workspace joined, whose log the entry belongs in).
        await _record(request, request.get(CALLER, caller), rule, response=response)
    return response


def _lacks_permission(exc: Forbidden) -> bool:
    """A refusal for a permission the caller lacks (``Caller.require``), not another
    (a form's expired CSRF token)."""
    return isinstance(exc.details, dict) and "needs" in exc.details


def _done(request: web.Request, response: web.StreamResponse) -> bool:
    if response.status >= 400:
        return False
    named = bool(response.get(audit.OBJECT))
    return request.path.startswith("/api/") or AUDITED in request or named


async def _in_workspace(request: web.Request, caller: Caller, workspace: str) -> Caller:
    """The caller in the workspace a path names (they may be working in another)."""
    if not caller.is_person:
        raise Forbidden("an API key cannot do this; sign in as a person", code="person_only")
    if caller.workspace != workspace:
        caller = await request.app[ACCESS].for_person(
            caller.user, caller.email, workspace, caller.address
        )
        request[CALLER] = caller
    return caller


def _check(caller: Caller, needs: str) -> None:
    if needs == PERSON:
        if not caller.is_person:
            raise Forbidden("an API key cannot do this; sign in as a person", code="person_only")
        return
    if not caller.workspace:
        raise Forbidden(
            "you belong to no workspace: create one (POST /api/v1/workspaces) or accept "
            "an invitation",
            code="no_workspace",
        )
    caller.require(needs)


async def _record(
    request: web.Request,
    caller: Caller,
    rule: Rule,
    response: web.StreamResponse | None = None,
    refused: str = "",
) -> None:
    info = dict(request.match_info)
    action = action_name(rule, info)
    noted, also = request.get(AUDITED, ("", ()))
    try:
        fields = await _fields(request)
        if request.path.startswith(WORKSPACE_PATHS):  # its {id} is the log's own workspace
            info.pop("id", None)
        object_id = noted or _object_id(info, response)
        for name in (action, *also):
            await audit.record(
                request.app[DATABASE],
                caller,
                name,
                object_id=object_id,
                fields=fields,
                refused=refused,
            )
    except CrmdError:
        raise
    except Exception:  # the action happened; its record failing must not hide that
        log.exception("audit.not_recorded", action=action)


def _object_id(info: dict[str, str], response: web.StreamResponse | None) -> str:
    """The object a path names, else the one an API answer names (what it made);
    ``audit.OBJECT`` on the answer overrides both."""
    if response is not None and response.get(audit.OBJECT):
        return response[audit.OBJECT]
    for name in OBJECT_PARAMS:
        if info.get(name):
            return info[name]
    body = getattr(response, "body", None)
    if isinstance(body, bytes) and body[:1] == b"{":
        try:
            answer = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return ""
        for name in ANSWER_IDS:
            if isinstance(answer.get(name), str):
                return str(answer[name])
    return ""


async def _fields(request: web.Request) -> list[str]:
    """The names of the fields a request sent (its JSON object's keys, a form's
    fields; with no body, its query's: ``DELETE /suppressions?source=``); never their
    values, which may be secrets or a customer's data."""
    if not request.body_exists or request.content_length is None:
        return sorted(set(request.query.keys()))
    if request.content_length > 1 << 20:
        return []
    kind = request.content_type
    try:
        if kind == "application/json":
            body: Any = await request.json()
        elif kind == "application/x-www-form-urlencoded":
            body = dict(await request.post())
        else:
            return []
    except (ValueError, UnicodeDecodeError):
        return []
    if isinstance(body, dict):
        return sorted(k for k in body if isinstance(k, str) and k not in NOT_FIELDS)
    if isinstance(body, list):
        return [f"{len(body)} items"]
    return []
