"""Credit holds are never left behind: a hold whose create can no longer succeed (stale: older
than HoldTimes.stale_after, with no task: its edge died, or could not tell the ledger) is released
every minute, not only when the control plane starts.

First the orphan scan (control/jobs/orphans.py) lists the upstream's recent tasks and gives
those the edge never learned of to their holds; only then are the holds left over released, and
only those whose every possible task the scan has seen. While the upstream cannot be listed,
holds stay held for at most HoldTimes.give_up_after. Should a create's usage record arrive after
all (an edge apart kept it in its spool), the record takes the hold again (assign_hold), so
releasing never leaves a task unbilled."""

from __future__ import annotations

import asyncio
import logging

from control.jobs.orphans import HoldTimes, OrphanFinder
from control.periodic import Periodic
from control.store.wallet import DatabaseWallet

log = logging.getLogger(__name__)
SWEEP_SECONDS = 60.0


class HoldSweeper:
    def __init__(
        self,
        wallet: DatabaseWallet,
        interval: float = SWEEP_SECONDS,
        *,
        times: HoldTimes | None = None,
        finder: OrphanFinder | None = None,
    ) -> None:
        self.wallet = wallet
        self.interval = interval
        self.times = times or HoldTimes()
        self.finder = finder  # None: no upstream key; stale holds are released unmatched
        self.released = 0  # since start
        self.swept = asyncio.Event()  # set after each sweep (whoever waits clears it)
        self._rounds = Periodic("credit hold sweep", self.sweep, lead=wallet.state.db.lead)

    async def sweep(self) -> int:
        try:
            now = self.wallet.clock()
            if self.finder is None:
                before = now - self.times.stale_after
            else:
                scan = await self.finder.scan()
                if scan.answered:
                    before = self.times.releasable_before(now)
                else:
                    before = now - self.times.give_up_after
            released = await self.wallet.recover(before)
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
