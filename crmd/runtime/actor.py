"""An actor: a named, long-lived task with a health state, run by the supervisor."""

from __future__ import annotations

import abc
import asyncio
import enum
import time


class Health(enum.StrEnum):
    STARTING = "starting"
    OK = "ok"
    STALLED = "stalled"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Actor(abc.ABC):
    """Subclasses implement ``run``: set ``health`` to OK once ready to work, keep going
    until ``stopping`` is set, then finish (and acknowledge) the work in hand and return.

    An actor with a ``deadline`` calls ``progressed()`` at least that often while it
    runs; one that does not is reported ``stalled`` (and crmd stops telling systemd's
    watchdog that all is well, so a stuck daemon is restarted).

    Raising from ``run`` is a crash: the supervisor logs it and runs the actor again
    after a back-off. Returning before ``stopping`` is set counts as a crash too.
    """

    def __init__(self, name: str, deadline: float | None = None) -> None:
        self.name = name
        self.deadline = deadline
        self.health = Health.STARTING
        self.detail = ""
        self.restarts = 0
        self.stopping = asyncio.Event()
        self.last_progress = time.monotonic()

    @abc.abstractmethod
    async def run(self) -> None: ...

    def progressed(self) -> None:
        """The actor's loop turned: it is not stuck."""
        self.last_progress = time.monotonic()

    def current_health(self, now: float | None = None) -> Health:
        """``health``, or STALLED for a running actor past its deadline."""
        if self.health is not Health.OK or self.deadline is None:
            return self.health
        idle = (time.monotonic() if now is None else now) - self.last_progress
        return Health.STALLED if idle > self.deadline else Health.OK

    def request_stop(self) -> None:
        self.stopping.set()

    async def sleep(self, seconds: float) -> bool:
        """Sleep, waking early on a stop request. True when the actor should stop."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True
