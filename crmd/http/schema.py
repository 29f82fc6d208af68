"""The base of crmd's request bodies, apart from the machinery that reads them
(``crmd.http.bodies``), so that the domains' schema modules and the typed client
(``crmd.client``) can share it without importing aiohttp's server."""

from __future__ import annotations

import msgspec


class Body(msgspec.Struct, forbid_unknown_fields=True):
    """The base of every JSON request body crmd decodes: a field it does not name is
    refused (422 ``invalid_body`` naming it, ``$.field``), never silently dropped, so a
    misspelt ``draft`` or ``scheduledAt`` cannot pass unnoticed. ``json_body`` takes
    nothing else; a Struct nested in a body derives from it too."""
