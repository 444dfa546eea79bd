"""Credit holds are never left behind: a hold whose create can no longer succeed (older than
HOLD_SECONDS, with no task: its edge died, or could not tell the ledger) is released every
minute, not only when the control plane starts. Should the create's usage record arrive after
all (an edge apart kept it in its spool), the record takes the hold again (assign_hold), so
releasing early never leaves a task unbilled."""

from __future__ import annotations

import asyncio
import logging

from control.periodic import Periodic
from control.store.wallet import SqliteWallet

log = logging.getLogger(__name__)
SWEEP_SECONDS = 60.0


class HoldSweeper:
    def __init__(self, wallet: SqliteWallet, interval: float = SWEEP_SECONDS) -> None:
        self.wallet = wallet
        self.interval = interval
        self.released = 0  # since start
        self.swept = asyncio.Event()  # set after each sweep (whoever waits clears it)
        self._rounds = Periodic("credit hold sweep", self.sweep)

    async def sweep(self) -> int:
        try:
            released = await self.wallet.recover()
        finally:
            self.swept.set()
        if released:
            self.released += released
            log.warning("released %d credit holds whose creates never answered", released)
        return released

    def start(self) -> None:
        self._rounds.start(self.interval)

    async def stop(self) -> None:
        await self._rounds.stop()
