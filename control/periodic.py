"""A round of background work every so many seconds (the rollup fold, the retention purge, the
hold sweep): one task of its own, a failed round logged and tried again the next round, stopped
by cancelling it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, work: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.work = work
        self._task: asyncio.Task[None] | None = None

    def start(self, interval: float, *, at_once: bool = True) -> None:
        """Run `work` every `interval` seconds: first at once, or after one interval."""

        async def loop() -> None:
            if not at_once:
                await asyncio.sleep(interval)
            while True:
                try:
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
