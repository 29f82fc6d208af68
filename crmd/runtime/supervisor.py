"""The supervisor: runs each actor as a task, restarts crashed ones with exponential
back-off, and stops them in reverse order of start within a deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import structlog

from crmd.runtime.actor import Actor, Health
from crmd.telemetry.logs import bind_actor
from crmd.telemetry.metrics import Metrics
from crmd.telemetry.mongo import charge_task_to

log = structlog.get_logger(__name__)


def next_delay(current: float, initial: float, maximum: float, ran_for: float) -> float:
    """The back-off before the next restart. An actor that stayed up for longer than the
    longest back-off has recovered, so its back-off starts over."""
    if ran_for > maximum:
        return initial
    return min(current * 2, maximum)


class Supervisor:
    def __init__(
        self,
        actors: Sequence[Actor],
        metrics: Metrics,
        *,
        initial_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> None:
        names = [a.name for a in actors]
        if len(set(names)) != len(names):
            raise ValueError(f"actor names must be unique: {names}")
        self.actors = list(actors)
        self.metrics = metrics
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        for actor in self.actors:
            self.metrics.actor_up.labels(actor.name).set(0)
            self._tasks[actor.name] = asyncio.create_task(
                self._supervise(actor), name=f"actor:{actor.name}"
            )

    async def _supervise(self, actor: Actor) -> None:
        bind_actor(actor.name)
        charge_task_to(actor.name)
        delay = self.initial_delay
        loop = asyncio.get_running_loop()
        while not actor.stopping.is_set():
            actor.health, actor.detail = Health.STARTING, ""
            actor.progressed()
            started = loop.time()
            try:
                log.info("actor.started", restarts=actor.restarts)
                await actor.run()
                if actor.stopping.is_set():
                    break
                reason = "returned before it was asked to stop"
                log.error("actor.exited", reason=reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                log.error("actor.crashed", reason=reason, exc_info=True)
            finally:
                self.metrics.actor_up.labels(actor.name).set(0)
            delay = next_delay(delay, self.initial_delay, self.max_delay, loop.time() - started)
            actor.restarts += 1
            actor.health, actor.detail = Health.RESTARTING, reason
            self.metrics.actor_restarts.labels(actor.name).inc()
            log.warning("actor.restarting", restarts=actor.restarts, delay=delay)
            if await actor.sleep(delay):
                break
        actor.health = Health.STOPPED
        log.info("actor.stopped")

    def refresh_metrics(self) -> None:
        for actor in self.actors:
            up = actor.current_health() is Health.OK
            self.metrics.actor_up.labels(actor.name).set(1 if up else 0)

    def healthy(self) -> bool:
        """Every actor is up and none is stuck past its deadline."""
        return all(actor.current_health() is Health.OK for actor in self.actors)

    def report(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        report = {}
        for actor in self.actors:
            health = actor.current_health(now)
            detail = actor.detail
            if health is Health.STALLED:
                detail = f"no progress for {now - actor.last_progress:.0f} s"
            report[actor.name] = {
                "status": str(health),
                "restarts": actor.restarts,
                **({"detail": detail} if detail else {}),
            }
        return report

    async def wait_healthy(self, timeout: float, poll: float = 0.05) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.healthy():
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(poll)
        return True

    async def stop(self, timeout: float) -> bool:
        """Ask each actor to stop, the last started first, and wait for it. Whatever is
        still running when ``timeout`` runs out is cancelled. True when all stopped in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        clean = True
        for actor in reversed(self.actors):
            task = self._tasks.get(actor.name)
            if task is None:
                continue
            actor.health = Health.STOPPING
            actor.request_stop()
            remaining = max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait({task}, timeout=remaining)
            if not done:
                clean = False
                log.error("actor.stop_timeout", actor=actor.name, timeout=timeout)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            actor.health = Health.STOPPED
            self.metrics.actor_up.labels(actor.name).set(0)
        return clean
