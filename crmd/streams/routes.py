"""Dead letters over HTTP: a tenant sees the entries of theirs that crmd gave up on.

Read only: replaying or dropping is an operator's act (``crmd dead-letters``), since a
dead letter is often a fault of crmd's or of its data, not of one tenant's request.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from aiohttp import web

from crmd.auth.requests import tenant_id
from crmd.http.describe import described
from crmd.http.keys import DEAD_LETTERS
from crmd.http.pages import choice, whole_number
from crmd.http.responses import json_response
from crmd.streams.dead import OWNED_KINDS, DeadLetter, Describers
from crmd.streams.schema import DeadLetterList, DeadLetterView

routes = web.RouteTableDef()
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class DeadLettersQuery(msgspec.Struct):
    stream: Literal["ingest", "dispatch"] | None = None
    """Only this stream's (else both)."""
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT


def letter_view(letter: DeadLetter, kind: str, describers: Describers) -> DeadLetterView:
    payload = letter.payload(describers)
    return DeadLetterView(
        id=letter.id,
        stream=kind,
        source_id=letter.source_id,
        dead_at=letter.dead_at,
        deliveries=letter.deliveries,
        error=letter.error,
        kind=payload.kind,
        summary=payload.summary,
    )


@routes.get("/api/v1/dead-letters")
@described("Your newest dead letters", tag="operations", ok=DeadLetterList, query=DeadLettersQuery)
async def list_dead_letters(request: web.Request) -> web.Response:
    """The signed-in user's newest dead letters (``stream``: ingest or dispatch, else
    both; ``limit``: 1 to 200, 50 by default)."""
    kind = choice(request, "stream", OWNED_KINDS)
    limit = whole_number(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    dead_letters = request.app[DEAD_LETTERS]
    owned = await dead_letters.of_user(tenant_id(request), kind, limit)
    kinds = {stream: name for name, stream in dead_letters.names().items()}
    described = dead_letters.describers
    items = [letter_view(letter, kinds[letter.stream], described) for letter in owned.letters]
    return json_response(DeadLetterList(items, owned.complete))
