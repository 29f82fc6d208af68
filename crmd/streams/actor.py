"""A stream actor: the stream worker run under the supervisor."""

from __future__ import annotations

from crmd.runtime.actor import Actor, Health
from crmd.streams.worker import StreamWorker


class StreamActor(Actor):
    """The ingest, dispatch and receipts actors are this class with another handler.
    It is stalled when its loop has not turned for longer than a handler may take plus
    a blocking read."""

    def __init__(self, name: str, worker: StreamWorker) -> None:
        settings = worker.settings
        super().__init__(name, deadline=worker.deadline + settings.block_ms / 1000 + 5)
        self.worker = worker
        worker.progressed = self.progressed

    async def run(self) -> None:
        await self.worker.run(self.stopping, on_ready=self._ready)

    def _ready(self) -> None:
        self.health = Health.OK
