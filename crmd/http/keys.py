"""Everything a request may need, as typed application keys, declared in this one place.

The composition root (``crmd.app``) sets each key once; a handler takes what it uses
(``request.app[CAMPAIGNS]``) and nothing else. Types are imported for the checker only,
so this module imports no domain at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from crmd.ai.service import Suggesters
    from crmd.auth.signin import SignIn
    from crmd.auth.users import User
    from crmd.campaigns.service import Campaigns
    from crmd.customers.service import Customers
    from crmd.events.intake import EventIntake
    from crmd.flows.service import Flows
    from crmd.http.admission import Admission
    from crmd.http.health import Health
    from crmd.ingest.upload import Imports
    from crmd.receipts.hits import Tracker
    from crmd.receipts.intake import ReceiptIntake
    from crmd.streams.dead import DeadLetters
    from crmd.suppressions.unsubscribe import Unsubscribes
    from crmd.telemetry.metrics import Metrics
    from crmd.webhooks.service import Webhooks
    from crmd.workspaces.access import Access, Caller
    from crmd.workspaces.invitations import Invitations
    from crmd.workspaces.keys import Keys

DATABASE: web.AppKey[AsyncDatabase[dict[str, Any]]] = web.AppKey("database")
"""For tenant stores only: a handler reaches data through ``tenant_store(request)``."""
SIGN_IN: web.AppKey[SignIn] = web.AppKey("sign_in")
IMPORTS: web.AppKey[Imports] = web.AppKey("imports")
CUSTOMERS: web.AppKey[Customers] = web.AppKey("customers")
"""Customers and orders posted as JSON, one customer read and changed."""
CAMPAIGNS: web.AppKey[Campaigns] = web.AppKey("campaigns")
EVENTS: web.AppKey[EventIntake] = web.AppKey("events")
FLOWS: web.AppKey[Flows] = web.AppKey("flows")
RECEIPTS: web.AppKey[ReceiptIntake] = web.AppKey("receipts")
TRACKER: web.AppKey[Tracker] = web.AppKey("tracker")
SUGGESTERS: web.AppKey[Suggesters] = web.AppKey("suggesters")
DEAD_LETTERS: web.AppKey[DeadLetters] = web.AppKey("dead_letters")
HEALTH: web.AppKey[Health] = web.AppKey("health")
ADMISSION: web.AppKey[Admission] = web.AppKey("admission")
"""Slots for expensive reads (``crmd.http.admission``)."""
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
UNSUBSCRIBES: web.AppKey[Unsubscribes] = web.AppKey("unsubscribes")
"""Signed unsubscribe links, followed (the console's public ``/u/{token}`` pages)."""
WEBHOOKS: web.AppKey[Webhooks] = web.AppKey("webhooks")
ACCESS: web.AppKey[Access] = web.AppKey("access")
"""Who is calling: people in workspaces, API keys (``crmd.workspaces.access``)."""
INVITATIONS: web.AppKey[Invitations] = web.AppKey("invitations")
"""Invitations to workspaces, their signed links (``crmd.workspaces.invitations``)."""
API_KEYS: web.AppKey[Keys] = web.AppKey("api_keys")
"""A workspace's API keys, made, listed and revoked (``crmd.workspaces.keys``)."""
CALLER: web.RequestKey[Caller] = web.RequestKey("caller")
"""The caller of a request: workspace, permissions, person or key (read it with
``crmd.auth.requests.caller``)."""
USER: web.RequestKey[User] = web.RequestKey("user")
"""The signed-in user of a request, set by the authentication middleware (read it with
``crmd.auth.requests.current_user``)."""
API_DOCUMENT: web.AppKey[dict[str, Any]] = web.AppKey("api_document")
"""The OpenAPI document, made on first use (the router is complete by then); the
composition root sets it to ``{"aliases": ...}``, the original clients' routes."""
