"""An edge apart from its control plane (`run_proxy.py --role edge`, `mitmdump -s
addons/gateway.py`): policy pulled from the control plane (and kept on disk:
proxy/policy_file.py), usage spooled locally and shipped, credits and events through its API."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from proxy.policy_file import FILE_NAME, SnapshotFile, restore
from proxy.remote import ControlClient, RemoteEvents, RemoteWallet, poll_snapshots
from proxy.services import EdgeServices
from proxy.usage.ingest import SpoolIngestor
from proxy.usage.spool import Spool


class EdgeApart:
    def __init__(
        self,
        services: EdgeServices,
        control_url: str,
        token: str,
        data_dir: Path,
        *,
        snapshot_max_age: float,
        flush_interval: float,
    ) -> None:
        self.services = services
        self.client = ControlClient(control_url, token, report=services.report)
        self.control_url, self.token, self.data_dir = control_url, token, data_dir
        self.snapshot_max_age, self.flush_interval = snapshot_max_age, flush_interval
        self.ingestor: SpoolIngestor | None = None
        self.poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        services = self.services
        # Policy first (the file on disk, then the poll): the spool below may wait on the
        # control plane to ship what a previous run left.
        saved = None
        if self.token:  # without one the control plane answers nothing to keep, nor sign with
            saved = SnapshotFile(
                self.data_dir / FILE_NAME,
                self.token,
                self.control_url,
                max_age=self.snapshot_max_age,
            )
            await restore(services.policy, saved)
        self.poller = asyncio.create_task(poll_snapshots(self.client, services.policy, saved=saved))
        spool = Spool(self.data_dir / "spool", flush_interval=self.flush_interval)
        await spool.start()
        services.spool = spool
        self.ingestor = SpoolIngestor(spool, self.client.ship_usage)
        await self.ingestor.start()
        services.use_wallet(RemoteWallet(self.client))
        services.use_events(RemoteEvents(self.client))

    async def stop(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller
        if self.ingestor is not None:
            with contextlib.suppress(Exception):
                await self.ingestor.stop()
        if self.services.spool is not None:
            await self.services.spool.close()
        await self.client.aclose()
