"""Moves records from sealed spool segments into a sink (SQLite, a control plane), then deletes
them.

Delivery is at least once: a segment is deleted only after the sink returned for all of its
records, so a crash (or a failed delete) between the two replays the segment, which the sink's
INSERT OR IGNORE by request_id makes harmless. Within one process a segment that failed halfway is
resumed after the records the sink already accepted, so retries do not resend them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from proxy.usage.segment import read_segment
from proxy.usage.spool import Spool

log = logging.getLogger(__name__)

Sink = Callable[[list[dict[str, Any]]], Awaitable[None]]
OUTAGE_REPORT_EVERY = 30.0  # seconds between two lines about a sink that keeps failing


class SpoolIngestor:
    """Moves records from sealed segments into a sink, then deletes the segment."""

    def __init__(
        self,
        spool: Spool,
        sink: Sink,
        *,
        interval: float = 0.25,
        batch_size: int = 1000,
    ) -> None:
        self.spool = spool
        self.sink = sink
        self.interval = interval
        self.batch_size = batch_size
        self.records_delivered = 0
        self.segments_deleted = 0
        self.sink_failures = 0
        self.clock: Callable[[], float] = time.monotonic
        # The sink's outage: when it began, when it was last reported, failures since.
        self._outage_since: float | None = None
        self._outage_reported = 0.0
        self._outage_failures = 0
        self._progress: dict[Path, int] = {}  # records of a segment the sink already accepted
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Replay every segment left by a previous run, then ingest every `interval`."""
        if self._task is not None:
            raise RuntimeError("ingestor already started")
        self._stopping.clear()
        async with self._lock:
            await self._ingest_sealed()  # a failing sink is retried by the task
        self._task = asyncio.create_task(self._run(), name="usage-spool-ingest")

    async def drain(self) -> bool:
        """Seal the current segment and ingest everything now. True if nothing is left behind."""
        async with self._lock:
            if self.spool.running and self.spool.has_unsealed_records:
                await self.spool.rotate()
            return await self._ingest_sealed()

    async def stop(self) -> None:
        """Stop the periodic task (letting a tick in progress finish), then drain."""
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None
        await self.drain()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            if self._stopping.is_set():
                return
            try:
                await self.drain()
            except Exception as exc:  # never let the task die; the next tick retries
                log.warning("usage spool: ingest tick failed (%s)", type(exc).__name__)

    async def _ingest_sealed(self) -> bool:
        for path in self.spool.sealed_segments():
            if not await self._ingest_segment(path):
                return False  # keep order; the sink is most likely down anyway
        return True

    async def _ingest_segment(self, path: Path) -> bool:
        done = self._progress.get(path, 0)
        position = 0
        records = read_segment(path)  # reads the file on first next(): no descriptor held
        while True:
            try:
                batch = await asyncio.to_thread(_take, records, self.batch_size)
            except FileNotFoundError:
                batch = []  # deleted by a previous attempt whose bookkeeping failed
            except OSError as exc:
                log.warning("usage spool: cannot read %s (%s)", path.name, exc.strerror)
                return False
            if not batch:
                break
            start, position = position, position + len(batch)
            if position <= done:
                continue  # already accepted by the sink in an earlier attempt
            batch = batch[max(0, done - start) :]
            try:
                await self.sink(batch)
            except Exception as exc:
                self._sink_failed(path, exc)
                return False
            self._sink_answered()
            self.records_delivered += len(batch)
            done = position
            self._progress[path] = done
        try:
            await self.spool.delete_segment(path)
        except OSError as exc:
            log.warning("usage spool: cannot delete %s (%s)", path.name, exc.strerror)
            return False
        self._progress.pop(path, None)
        self.segments_deleted += 1
        return True

    def _sink_failed(self, path: Path, exc: Exception) -> None:
        """One line when the sink starts failing, then one every OUTAGE_REPORT_EVERY seconds
        (a tick retries every `interval`: a line each would flood the log of an outage)."""
        self.sink_failures += 1
        self._outage_failures += 1
        now = self.clock()
        if self._outage_since is None:
            self._outage_since = self._outage_reported = now
        elif now - self._outage_reported < OUTAGE_REPORT_EVERY:
            return
        else:
            self._outage_reported = now
        # Never log the exception text: it may echo record contents.
        log.warning(
            "usage spool: sink failed for %s (%s; %d failures in %.0f s); segment kept, "
            "retrying every %.2f s",
            path.name,
            type(exc).__name__,
            self._outage_failures,
            now - self._outage_since,
            self.interval,
        )

    def _sink_answered(self) -> None:
        if self._outage_since is None:
            return
        log.warning(
            "usage spool: sink back after %d failures in %.0f s",
            self._outage_failures,
            self.clock() - self._outage_since,
        )
        self._outage_since, self._outage_failures = None, 0


def _take(records: Iterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return list(itertools.islice(records, n))
