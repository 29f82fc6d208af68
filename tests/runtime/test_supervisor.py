"""The supervisor: restarts with back-off, stop in reverse order within a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from crmd.runtime.actor import Actor, Health
from crmd.runtime.supervisor import Supervisor, next_delay
from crmd.telemetry.metrics import Metrics


class Steady(Actor):
    def __init__(self, name: str, order: list[str]) -> None:
        super().__init__(name)
        self.order = order

    async def run(self) -> None:
        self.health = Health.OK
        await self.stopping.wait()
        self.order.append(self.name)


class CrashesTwice(Actor):
    def __init__(self) -> None:
        super().__init__("flaky")
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= 2:
            raise RuntimeError(f"boom {self.runs}")
        self.health = Health.OK
        await self.stopping.wait()


class ReturnsEarly(Actor):
    async def run(self) -> None:
        self.health = Health.OK


class Stubborn(Actor):
    async def run(self) -> None:
        self.health = Health.OK
        await asyncio.sleep(3600)  # ignores stop requests


def restarts(metrics: Metrics, actor: str) -> float:
    value = metrics.registry.get_sample_value("crmd_actor_restarts_total", {"actor": actor})
    return value or 0.0


def test_back_off_doubles_up_to_the_limit_and_resets_after_a_long_run():
    assert next_delay(0.5, 0.5, 30, ran_for=0.1) == 1.0
    assert next_delay(16, 0.5, 30, ran_for=1) == 30
    assert next_delay(30, 0.5, 30, ran_for=31) == 0.5


async def test_crashed_actor_is_restarted_logged_and_counted():
    metrics = Metrics()
    flaky = CrashesTwice()
    supervisor = Supervisor([flaky], metrics, initial_delay=0.01, max_delay=0.05)
    with capture_logs() as logs:
        supervisor.start()
        assert await supervisor.wait_healthy(5)
        await supervisor.stop(5)
    assert flaky.runs == 3
    assert flaky.restarts == 2
    assert restarts(metrics, "flaky") == 2
    crashes = [e for e in logs if e["event"] == "actor.crashed"]
    assert [e["reason"] for e in crashes] == ["RuntimeError: boom 1", "RuntimeError: boom 2"]


async def until(condition: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_returning_without_a_stop_request_counts_as_a_crash():
    metrics = Metrics()
    actor = ReturnsEarly("quitter")
    supervisor = Supervisor([actor], metrics, initial_delay=0.01, max_delay=0.02)
    supervisor.start()
    await until(lambda: actor.restarts >= 2)
    await supervisor.stop(5)
    assert restarts(metrics, "quitter") == actor.restarts


class Stuck(Actor):
    """Ready, then its loop stops turning: it never calls progressed() again."""

    def __init__(self) -> None:
        super().__init__("stuck", deadline=0.2)
        self.release = asyncio.Event()

    async def run(self) -> None:
        self.health = Health.OK
        await self.release.wait()
        self.progressed()
        await self.stopping.wait()


async def test_an_actor_past_its_deadline_is_stalled_and_unhealthy_until_it_moves_again():
    actor = Stuck()
    supervisor = Supervisor([actor], Metrics())
    supervisor.start()
    assert await supervisor.wait_healthy(5)
    await until(lambda: not supervisor.healthy())
    report = supervisor.report()["stuck"]
    assert report["status"] == "stalled"
    assert report["detail"].startswith("no progress for ")
    actor.release.set()
    await until(supervisor.healthy)
    assert supervisor.report()["stuck"]["status"] == "ok"
    await supervisor.stop(5)


async def test_actors_stop_in_reverse_order_of_start():
    order: list[str] = []
    actors = [Steady(name, order) for name in ("ingest", "dispatch", "http")]
    supervisor = Supervisor(actors, Metrics())
    supervisor.start()
    assert await supervisor.wait_healthy(5)
    assert await supervisor.stop(5)
    assert order == ["http", "dispatch", "ingest"]
    assert all(a.health is Health.STOPPED for a in actors)


async def test_an_actor_that_ignores_stop_is_cancelled_at_the_deadline():
    supervisor = Supervisor([Stubborn("stuck")], Metrics())
    supervisor.start()
    assert await supervisor.wait_healthy(5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await supervisor.stop(0.3) is False
    assert loop.time() - started < 2


def test_actor_names_must_be_unique():
    with pytest.raises(ValueError, match="unique"):
        Supervisor([ReturnsEarly("a"), ReturnsEarly("a")], Metrics())
