"""Admission for expensive reads: a bounded wait for a slot, then 429, never a request
that queues for ten seconds.

A rule preview, a filtered list, a count asked for now: each may read thousands of
documents, and thirty people asking at once would leave the database no time for the
import that runs meanwhile. So each takes a slot for as long as it runs: one of the
user's (``read_slots_per_user``), so that one user's burst waits behind itself, and one
of the process's (``read_slots``). A request that finds them full waits at most
``read_wait`` seconds for one and is then answered ``429 busy`` with ``Retry-After``.
Slots are per process, as each web process has its own share of the work.

``/metrics`` shows the slots in use, the requests waiting, how long they waited and how
many were refused.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar, cast

from aiohttp import web

from crmd.errors import CrmdError
from crmd.http.keys import ADMISSION, CALLER
from crmd.telemetry.metrics import Metrics

Page = TypeVar("Page", bound=Callable[[web.Request], Awaitable[web.StreamResponse]])
RETRY_AFTER = 1
"""Seconds: a slot is usually free again within a second."""


class Busy(CrmdError):
    status, code = 429, "busy"
    retry_after = RETRY_AFTER


class _UserSlots:
    def __init__(self, slots: int) -> None:
        self.free = asyncio.Semaphore(slots)
        self.holders = 0
        """Requests holding or waiting for one of these slots (the entry goes at 0)."""


class Admission:
    def __init__(self, slots: int, per_user: int, wait: float, metrics: Metrics) -> None:
        self.per_user = per_user
        self.wait = wait
        self.metrics = metrics
        self._all = asyncio.Semaphore(slots)
        self._users: dict[str, _UserSlots] = {}

    @asynccontextmanager
    async def slot(self, user: str) -> AsyncIterator[None]:
        """Hold one of ``user``'s slots and one of the process's for the block; Busy
        (429) when none came free within ``wait`` seconds."""
        mine = self._users.get(user)
        if mine is None:
            mine = self._users[user] = _UserSlots(self.per_user)
        mine.holders += 1
        metrics = self.metrics
        loop = asyncio.get_running_loop()
        asked = loop.time()
        held: list[asyncio.Semaphore] = []
        refused = "user"
        metrics.read_waiting.inc()
        try:
            try:
                async with asyncio.timeout(self.wait):
                    for semaphore, whose in ((mine.free, "user"), (self._all, "server")):
                        refused = whose
                        await semaphore.acquire()
                        held.append(semaphore)
            except TimeoutError:
                metrics.reads_refused.labels(refused).inc()
                raise Busy(
                    "too many of your expensive requests at once: try again in a moment"
                    if refused == "user"
                    else "the server is busy with other expensive requests: try again in a moment",
                    details={"retryAfter": RETRY_AFTER},
                ) from None
            finally:
                metrics.read_waiting.dec()
                metrics.read_wait.observe(loop.time() - asked)
            metrics.read_slots_in_use.inc()
            try:
                yield
            finally:
                metrics.read_slots_in_use.dec()
        finally:
            for semaphore in held:
                semaphore.release()
            mine.holders -= 1
            if not mine.holders:
                self._users.pop(user, None)


HOLDS_SLOT: web.RequestKey[bool] = web.RequestKey("holds_read_slot")
"""Set while a request holds a slot: a read made of other reads (the original clients'
whole lists, page by page) holds one, and the pages it asks for take no other."""


@asynccontextmanager
async def slot(request: web.Request) -> AsyncIterator[None]:
    """One of the signed-in user's slots, for the block: a handler that is an expensive
    read only in part (the reading, not a wait for a count in the background). A
    request that holds one already (or a clone made from it while it did) takes no
    second one."""
    if request.get(HOLDS_SLOT):
        yield
        return
    async with request.app[ADMISSION].slot(request[CALLER].workspace):
        request[HOLDS_SLOT] = True
        try:
            yield
        finally:
            request[HOLDS_SLOT] = False


def asked_for(name: str) -> Callable[[web.Request], bool]:
    """A request that has the query parameter ``name`` (a rule, a status filter)."""
    return lambda request: bool(request.query.get(name))


def expensive(handler: Page) -> Page:
    """Mark a handler an expensive read: it runs holding one of the signed-in user's
    slots (``Admission.slot``)."""
    return expensive_when(lambda _: True)(handler)


def expensive_when(asked: Callable[[web.Request], bool]) -> Callable[[Page], Page]:
    """``expensive``, for the requests ``asked`` says are (a list with a rule)."""

    def mark(inner: Page) -> Page:
        @functools.wraps(inner)
        async def admitted(request: web.Request) -> web.StreamResponse:
            if not asked(request):
                return await inner(request)
            async with slot(request):
                return await inner(request)

        return cast(Page, admitted)

    return mark
