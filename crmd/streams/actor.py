"""A stream actor: the stream worker run under the supervisor."""

from __future__ import annotations

from crmd.runtime.actor import Actor, Health
from crmd.streams.worker import StreamWorker


class StreamActor(Actor):
    """The ingest, dispatch and receipts actors are this class with another handler."""

    def __init__(self, name: str, worker: StreamWorker) -> None:
        super().__init__(name)
        self.worker = worker

    async def run(self) -> None:
        await self.worker.run(self.stopping, on_ready=self._ready)

    def _ready(self) -> None:
        self.health = Health.OK
