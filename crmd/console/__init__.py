"""The operator console: server-rendered pages at ``/`` over the same services as the
API, with the same tenancy. Every form works without JavaScript; ``static/console.js``
adds live figures, the as-you-type rule count, previews and the upload progress."""

from __future__ import annotations

import asyncio
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.web import RouteDef

from crmd.console import (
    audit,
    campaign_page,
    campaigns,
    dashboard,
    flows,
    formats,
    imports,
    keys,
    records,
    reference,
    rights,
    segments,
    signin,
    suppressions,
    team,
    unsubscribe,
    webhooks,
)
from crmd.console.chart import delivery_bar
from crmd.console.live import CLOSING, closing_on_shutdown
from crmd.console.web import CONSOLE, ConsoleSettings, console_route, security_headers

STATIC = Path(__file__).parent / "static"
ROUTES = (
    signin.routes,
    dashboard.routes,
    records.routes,
    rights.routes,
    imports.routes,
    segments.routes,
    campaigns.routes,
    campaign_page.routes,
    flows.routes,
    reference.routes,
    suppressions.routes,
    unsubscribe.routes,
    webhooks.routes,
    team.routes,
    keys.routes,
    audit.routes,
)


@cache
def static_url(name: str) -> str:
    """The file's address, versioned by its content so browsers may keep it."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


def bar(campaign: Any) -> Any:
    return delivery_bar(campaign.get("stats", {}), int(campaign.get("audienceSize", 0)))


def setup_console(app: web.Application, settings: ConsoleSettings) -> None:
    """The console's routes, templates and static files on ``app`` (whose middleware
    list has ``crmd.console.web.console`` in it)."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("crmd.console", "templates"),
        autoescape=True,
    )
    currency = settings.currency
    env.globals.update(
        static=static_url,
        money=lambda value: formats.money(value, currency),
        when=formats.when,
        bar=bar,
        attribute_label=formats.attribute_label,
        attribute_value=formats.attribute_value,
        excerpt=formats.excerpt,
        currency=currency,
    )
    app[CONSOLE] = settings
    app[CLOSING] = asyncio.Event()
    app.on_shutdown.append(closing_on_shutdown)
    app.router.add_static("/static/", STATIC, name="static")
    app.on_response_prepare.append(security_headers)
    for table in ROUTES:
        for route in table:
            if isinstance(route, RouteDef):
                console_route(route.handler)
        app.add_routes(table)
