"""The caller of a request and the workspace's data it may reach, for handlers
(re-exported by ``crmd.auth.requests``, which most of them import)."""

from __future__ import annotations

from aiohttp import web

from crmd.errors import Forbidden
from crmd.http.keys import CALLER, DATABASE
from crmd.store.tenant import TenantStore
from crmd.workspaces.access import Caller


def caller(request: web.Request) -> Caller:
    """Who calls, in which workspace, with which permissions."""
    return request[CALLER]


def tenant_id(request: web.Request) -> str:
    """The caller's workspace: handlers take the tenant from here and nowhere else."""
    workspace = request[CALLER].workspace
    if not workspace:
        raise Forbidden("you belong to no workspace", code="no_workspace")
    return workspace


def tenant_store(request: web.Request) -> TenantStore:
    """The caller's workspace's data, and only its."""
    return TenantStore(request.app[DATABASE], tenant_id(request))
