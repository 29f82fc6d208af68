"""The clock actor: what happens because time passed, not because a message came.

It knows nothing of campaigns or uploads: every ``interval`` it runs the tasks it was
given, in order, each with the same ``now``. The composition root hands it the tasks
(scheduled campaigns, closing receipt windows, interrupted uploads...). Each task must
be a conditional update, so that several crmd processes can run clocks at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from crmd.runtime.actor import Actor, Health

Task = Callable[[datetime], Awaitable[object]]


class ClockActor(Actor):
    def __init__(self, interval: float, tasks: Sequence[tuple[str, Task]]) -> None:
        # A tick that takes much longer than its interval is stuck somewhere.
        super().__init__("clock", deadline=max(60.0, interval * 12))
        self.interval = interval
        self.tasks = list(tasks)

    async def run(self) -> None:
        self.health = Health.OK
        while not await self.sleep(self.interval):
            now = datetime.now(UTC)
            for _, task in self.tasks:
                await task(now)
                self.progressed()
