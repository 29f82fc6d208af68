"""Typed application keys: the app's state lives here, never in module globals."""

from aiohttp import web

from crmd.runtime.context import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
