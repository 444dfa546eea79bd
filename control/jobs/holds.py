"""Credit holds are never left behind: a hold whose create can no longer succeed (older than
HOLD_SECONDS, with no task: its edge died, or could not tell the ledger) is released every
minute, not only when the control plane starts. Should the create's usage record arrive after
all (an edge apart kept it in its spool), the record takes the hold again (assign_hold), so
releasing early never leaves a task unbilled."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from control.store.wallet import SqliteWallet

log = logging.getLogger(__name__)
SWEEP_SECONDS = 60.0


class HoldSweeper:
    def __init__(self, wallet: SqliteWallet, interval: float = SWEEP_SECONDS) -> None:
        self.wallet = wallet
        self.interval = interval
        self.released = 0  # since start
        self.swept = asyncio.Event()  # set after each sweep (whoever waits clears it)
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        released = await self.wallet.recover()
        if released:
            self.released += released
            log.warning("released %d credit holds whose creates never answered", released)
        return released

    def start(self) -> None:
        async def loop() -> None:
            while True:
                try:
                    await self.sweep()
                except Exception:  # the database busy or away: the next sweep tries again
                    log.exception("credit hold sweep failed")
                self.swept.set()
                await asyncio.sleep(self.interval)

        self._task = asyncio.create_task(loop(), name="hold-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
