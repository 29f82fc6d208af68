"""An actor: a named, long-lived task with a health state, run by the supervisor."""

from __future__ import annotations

import abc
import asyncio
import enum


class Health(enum.StrEnum):
    STARTING = "starting"
    OK = "ok"
    RESTARTING = "restarting"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Actor(abc.ABC):
    """Subclasses implement ``run``: set ``health`` to OK once ready to work, keep going
    until ``stopping`` is set, then finish (and acknowledge) the work in hand and return.

    Raising from ``run`` is a crash: the supervisor logs it and runs the actor again
    after a back-off. Returning before ``stopping`` is set counts as a crash too.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.health = Health.STARTING
        self.detail = ""
        self.restarts = 0
        self.stopping = asyncio.Event()

    @abc.abstractmethod
    async def run(self) -> None: ...

    def request_stop(self) -> None:
        self.stopping.set()

    async def sleep(self, seconds: float) -> bool:
        """Sleep, waking early on a stop request. True when the actor should stop."""
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True
