"""Makes the chain self-sufficient when it runs without the embedded control plane
(`mitmdump -s addons/gateway.py`, or `run_proxy.py --role edge`): policy is pulled from the
control plane (and kept on disk: proxy/policy_file.py), usage is spooled locally and shipped."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from mitmproxy import ctx, exceptions

from proxy.options import declare
from proxy.policy_file import FILE_NAME, SnapshotFile, restore
from proxy.remote import ControlClient, RemoteEvents, RemoteWallet, poll_snapshots
from proxy.services import EdgeServices
from proxy.usage.ingest import SpoolIngestor
from proxy.usage.spool import Spool


class Standalone:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services
        self.client: ControlClient | None = None
        self.ingestor: SpoolIngestor | None = None
        self.poller: asyncio.Task[None] | None = None

    def load(self, loader) -> None:
        declare(
            loader,
            "nextapi_control_url",
            "nextapi_token_env",
            "nextapi_data_dir",
            "nextapi_snapshot_max_age_hours",
            "nextapi_redis_url",
            "nextapi_redis_prefix",
            "nextapi_redis_failure",
            "nextapi_usage_flush_interval",
        )

    def configure(self, updated: set[str]) -> None:
        if "nextapi_control_url" in updated:
            url = ctx.options.nextapi_control_url
            if url and not url.startswith(("http://", "https://")):
                raise exceptions.OptionsError("nextapi_control_url must be an http(s) URL")
        if {"nextapi_redis_url", "nextapi_redis_prefix", "nextapi_redis_failure"} & updated:
            url = ctx.options.nextapi_redis_url
            if url and not url.startswith(("redis://", "rediss://")):
                raise exceptions.OptionsError("nextapi_redis_url must be a redis:// URL")
            # (run_proxy.py --role edge shares its counters before the chain loads.)
            if url and self.services.breaker is None:
                self.services.use_redis(
                    url,
                    prefix=ctx.options.nextapi_redis_prefix,
                    failure=ctx.options.nextapi_redis_failure,
                )
        if "nextapi_snapshot_max_age_hours" in updated:
            hours = ctx.options.nextapi_snapshot_max_age_hours
            if not hours > 0:
                raise exceptions.OptionsError("nextapi_snapshot_max_age_hours must be positive")
            self.services.policy.max_age = hours * 3600
        if "nextapi_usage_flush_interval" in updated:
            if not 0 < ctx.options.nextapi_usage_flush_interval <= 5:
                raise exceptions.OptionsError("nextapi_usage_flush_interval must be in (0, 5]")

    async def running(self) -> None:
        url = ctx.options.nextapi_control_url
        if not url:
            raise exceptions.OptionsError("nextapi_control_url is required to run the edge alone")
        token = os.environ.get(ctx.options.nextapi_token_env, "")
        self.client = ControlClient(url, token, report=self.services.report)
        # Policy first (the file on disk, then the poll): the spool below may wait on the
        # control plane to ship what a previous run left.
        saved = None
        if token:  # without one the control plane answers nothing to keep, nor sign a file with
            saved = SnapshotFile(
                Path(ctx.options.nextapi_data_dir) / FILE_NAME,
                token,
                url,
                max_age=ctx.options.nextapi_snapshot_max_age_hours * 3600,
            )
            await restore(self.services.policy, saved)
        policy = self.services.policy
        self.poller = asyncio.create_task(poll_snapshots(self.client, policy, saved=saved))
        spool = Spool(
            Path(ctx.options.nextapi_data_dir) / "spool",
            flush_interval=ctx.options.nextapi_usage_flush_interval,
        )
        await spool.start()
        self.services.spool = spool
        self.ingestor = SpoolIngestor(spool, self.client.ship_usage)
        await self.ingestor.start()
        self.services.use_wallet(RemoteWallet(self.client))
        self.services.use_events(RemoteEvents(self.client))

    async def done(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller
        if self.ingestor is not None:
            with contextlib.suppress(Exception):
                await self.ingestor.stop()
        if self.services.spool is not None:
            await self.services.spool.close()
        if self.client is not None:
            await self.client.aclose()
