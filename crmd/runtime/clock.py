"""The clock actor: what happens because time passed, not because a message came.

It knows nothing of campaigns or uploads: every ``interval`` it runs the tasks it was
given, in order, each with the same ``now``. The composition root hands it the tasks
(scheduled campaigns, closing receipt windows, interrupted uploads...).

Every crmd process may run a clock, but only one ticks at a time: the one holding the
``lease``. The others stand by and take over within the lease's time when the holder
dies. Before each task the holder renews the lease, so a holder that stalled and lost it
(to another, or because Redis lost its data) stops at its next task. Its fencing token
goes through ``fence`` (a write to the database) at the first task of each tick and
whenever the token is new: a holder whose Redis still names it while another holds a
newer token (two Redis servers each believing they are the one) stops at its next tick.
Once a tick, not once a task, as fifteen writes every five seconds were a fifth of the
database's time under load. Each task is a conditional update all the same, so even two
ticks at once change nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import structlog

from crmd.runtime.actor import Actor, Health
from crmd.runtime.lease import Lease

log = structlog.get_logger(__name__)

Task = Callable[[datetime], Awaitable[object]]
Fence = Callable[[int, datetime], Awaitable[int]]
"""Records a token; answers the newest recorded (a larger one: a newer holder exists)."""


class ClockActor(Actor):
    def __init__(
        self,
        interval: float,
        tasks: Sequence[tuple[str, Task]],
        lease: Lease | None = None,
        fence: Fence | None = None,
    ) -> None:
        # A tick that takes much longer than its interval is stuck somewhere.
        super().__init__("clock", deadline=max(60.0, interval * 12))
        self.interval = interval
        self.tasks = list(tasks)
        self.lease = lease
        self.fence = fence
        self.leading: bool | None = None
        """Whether this clock held the lease at its last tick (None before its first);
        /readyz shows it as the actor's detail."""
        self.ticks = 0
        self._fenced: int | None = None
        """The token recorded through ``fence`` in this tick."""

    async def run(self) -> None:
        self.health = Health.OK
        try:
            while not await self.sleep(self.interval):
                self.progressed()
                await self.tick()
        finally:
            if self.lease is not None and self.leading:
                with contextlib.suppress(Exception):
                    await self.lease.release()

    async def tick(self) -> bool:
        """Run every task once, if this clock leads; False when it does not. The lease
        is renewed before each task and, while a task runs, in the background, so a
        long task does not let it lapse."""
        now = datetime.now(UTC)
        self._fenced = None
        renewing = asyncio.create_task(self._renew()) if self.lease is not None else None
        try:
            for _, task in self.tasks:
                if not await self._may_run(now):
                    return False
                await task(now)
                self.progressed()
        finally:
            if renewing is not None:
                renewing.cancel()
        self.ticks += 1
        return True

    async def _renew(self) -> None:
        assert self.lease is not None
        while True:
            await asyncio.sleep(self.lease.ttl_ms / 3000)
            if self.leading:
                try:
                    await self.lease.hold()
                except Exception as exc:  # the next task's own check will tell
                    log.warning("clock.renew_failed", error=f"{type(exc).__name__}: {exc}"[:200])

    async def _may_run(self, now: datetime) -> bool:
        if self.lease is None:
            return True
        token = await self.lease.hold()
        leading = token is not None
        if token is not None and self.fence is not None and token != self._fenced:
            newest = await self.fence(token, now)
            if newest > token:  # a newer holder exists: give way, and never lag behind it
                leading = False
                await self.lease.release()
                await self.lease.advance(newest)
            else:
                self._fenced = token
        if leading != self.leading:
            log.info("clock.leading" if leading else "clock.standing_by", token=token)
            self.leading = leading
            self.detail = "leading" if leading else "standing by"
        return leading
