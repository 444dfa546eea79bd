"""A round of background work every so many seconds (the rollup fold, the retention purge, the
hold sweep): one task of its own, a failed round logged and tried again the next round, stopped
by cancelling it. With several control planes on one database, a round runs only where `lead`
says this one leads the job (control/store/database.py `Database.lead`), so that one runs it at
a time and another takes over when it dies."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

type Lead = Callable[[str], Awaitable[bool]]


class Periodic:
    def __init__(
        self, name: str, work: Callable[[], Awaitable[object]], *, lead: Lead | None = None
    ) -> None:
        self.name = name
        self.work = work
        self.lead = lead
        self._task: asyncio.Task[None] | None = None

    def start(self, interval: float, *, at_once: bool = True) -> None:
        """Run `work` every `interval` seconds: first at once, or after one interval."""

        async def loop() -> None:
            if not at_once:
                await asyncio.sleep(interval)
            while True:
                try:
                    if self.lead is None or await self.lead(self.name):
                        await self.work()
                except Exception:
                    log.exception("%s failed; trying again next round", self.name)
                await asyncio.sleep(interval)

        self._task = asyncio.create_task(loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
