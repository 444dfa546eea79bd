"""Crash-safe, append-only usage spool with group commit.

Usage records are produced on the event loop and must reach SQLite eventually. They go first to
append-only segment files in one directory; `proxy.usage.ingest.SpoolIngestor` later moves sealed
segments into the database and deletes them.

Segment files and their frames: proxy/usage/segment.py.

Thread model: one dedicated writer thread per spool, rather than `asyncio.to_thread` per flush.
- It owns the segment's file descriptor, so writes are strictly ordered without a lock held across
  I/O, and fsync latency never occupies the default executor other code depends on.
- Group commit falls out of it: whatever accumulates while one write+fsync is in progress goes out
  in the next single write+fsync.
- Its timed wait is the flush timer, so plain `append` needs no loop->thread signal at all: the hot
  path is msgpack + crc32 + an uncontended `threading.Lock` + `list.append`, no syscall. Only
  `append_durable` wakes the thread (an Event). Completion comes back via `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.usage.segment import MAGIC, SEGMENT_SUFFIX, encode_record

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d{12})-(\d{13})\.seg$")
_LOCK_NAME = ".lock"
_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)  # size changes included


class SpoolError(RuntimeError):
    """The spool is not running, or a durable record could not be written."""


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class SpoolStats:
    records_appended: int = 0  # accepted by append/append_durable
    durable_appended: int = 0
    records_written: int = 0  # written and fsynced
    writes: int = 0  # write() batches
    fsyncs: int = 0  # every fsync/fdatasync, including segment creation
    bytes_written: int = 0
    segments_opened: int = 0
    write_errors: int = 0


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        flush_interval: float = 0.2,
        segment_max_bytes: int = 16 * 2**20,
    ) -> None:
        self.directory = Path(directory)
        self.flush_interval = flush_interval
        self.segment_max_bytes = segment_max_bytes
        self.stats = SpoolStats()
        # Shared between the loop and the writer thread, guarded by _lock.
        self._lock = threading.Lock()
        self._buf: list[bytes] = []
        self._seq = 0  # sequence number of the last accepted record
        self._rotations: list[asyncio.Future[Path | None]] = []
        self._accepting = False
        self._closing = False
        self._wake = threading.Event()
        # Event-loop side only.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._sealed: list[Path] = []
        self._sealed_upto = 0  # every record with seq <= this is in a sealed segment
        self._current: Path | None = None
        self._started = False
        self._close_task: asyncio.Future[None] | None = None
        self._thread: threading.Thread | None = None
        # Writer thread only (and start(), before the thread exists).
        self._fd = -1
        self._path: Path | None = None
        self._file_records = 0
        self._file_bytes = 0
        self._written_upto = 0
        self._counter = 1
        self._lock_fd = -1

    # ----- event-loop API -------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise SpoolError("spool already started")
        self._started = True
        self._loop = asyncio.get_running_loop()
        self._sealed = await asyncio.to_thread(self._prepare)
        self._current = self._path
        with self._lock:
            self._accepting = True
        self._thread = threading.Thread(target=self._run, name="usage-spool-writer", daemon=True)
        self._thread.start()

    def append(self, record: dict[str, Any]) -> None:
        """Buffer a record; it is written and fsynced within about `flush_interval`."""
        frame = encode_record(record)
        with self._lock:
            if not self._accepting:
                raise SpoolError("usage spool is not running")
            self._seq += 1
            self._buf.append(frame)
            self.stats.records_appended += 1

    async def append_durable(self, record: dict[str, Any]) -> None:
        """Return once this record and every record appended before it are fsynced."""
        frame = encode_record(record)
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        with self._lock:
            if not self._accepting:
                raise SpoolError("usage spool is not running")
            self._seq += 1
            seq = self._seq
            self._buf.append(frame)
            self.stats.records_appended += 1
            self.stats.durable_appended += 1
        # Settling runs on this loop, so it cannot happen before the waiter is registered.
        self._waiters.append((seq, fut))
        self._wake.set()
        await fut

    def rotate(self) -> asyncio.Future[Path | None]:
        """Seal the current segment (after writing everything appended so far) and open a new one.

        The future resolves to the sealed path, or None when the segment held no records (then
        nothing changes). Once it resolves, the path is in `sealed_segments()`.
        """
        assert self._loop is not None
        fut: asyncio.Future[Path | None] = self._loop.create_future()
        with self._lock:
            if not self._accepting:
                raise SpoolError("usage spool is not running")
            self._rotations.append(fut)
        self._wake.set()
        return fut

    def sealed_segments(self) -> list[Path]:
        """Segments no longer written to, oldest first (no I/O: tracked in memory)."""
        return list(self._sealed)

    @property
    def current_segment(self) -> Path | None:
        return self._current

    @property
    def running(self) -> bool:
        return self._accepting

    @property
    def has_unsealed_records(self) -> bool:
        """True if some accepted record is not yet in a sealed segment."""
        return self._seq > self._sealed_upto

    async def delete_segment(self, path: Path) -> None:
        """Delete a sealed segment (once its records are safely elsewhere)."""
        if path not in self._sealed:
            raise ValueError(f"{path.name} is not a sealed segment of this spool")
        await asyncio.to_thread(path.unlink, missing_ok=True)
        self._sealed.remove(path)

    async def close(self) -> None:
        """Write and fsync everything, seal the current segment, stop the writer. Idempotent."""
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close())
        await asyncio.shield(self._close_task)

    async def _close(self) -> None:
        with self._lock:
            self._accepting = False
            self._closing = True
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock; a cheap, non-blocking syscall
            self._lock_fd = -1
        self._current = None
        self._settle(self._seq, SpoolError("usage spool closed before the record was written"))

    # ----- loop callbacks (posted by the writer thread) ------------------------------------------

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody is waiting
            self._loop.call_soon_threadsafe(callback, *args)

    def _settle(self, upto: int, exc: BaseException | None) -> None:
        while self._waiters and self._waiters[0][0] <= upto:
            _, fut = self._waiters.popleft()
            if fut.done():  # the caller was cancelled; its record is written anyway
                continue
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(SpoolError(f"usage spool write failed: {exc}"))

    def _on_sealed(self, path: Path, upto: int) -> None:
        self._sealed.append(path)
        self._sealed_upto = max(self._sealed_upto, upto)
        if self._current == path:
            self._current = None

    def _on_opened(self, path: Path) -> None:
        self._current = path

    @staticmethod
    def _resolve(futures: list[asyncio.Future[Path | None]], path: Path | None) -> None:
        for fut in futures:
            if not fut.done():
                fut.set_result(path)

    # ----- writer thread ------------------------------------------------------------------------

    def _prepare(self) -> list[Path]:
        """In a worker thread: create and lock the directory, list old segments, open a new one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolError(f"spool directory {self.directory} is used by another spool") from None
        self._lock_fd = fd
        old = sorted(p for p in self.directory.iterdir() if _NAME_RE.match(p.name))
        if old:
            self._counter = int(old[-1].name[:12]) + 1
        self._open_segment()
        return old

    def _open_segment(self) -> None:
        # Zero-padded counter first (creation order), then wall-clock milliseconds for humans.
        name = f"{self._counter:012d}-{time.time_ns() // 1_000_000:013d}{SEGMENT_SUFFIX}"
        path = self.directory / name
        self._counter += 1
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        try:
            os.write(fd, MAGIC)
            _datasync(fd)
            _fsync_dir(self.directory)  # the new name itself must survive a power loss
        except OSError:
            os.close(fd)
            raise
        self._fd, self._path = fd, path
        self._file_records, self._file_bytes = 0, len(MAGIC)
        self.stats.segments_opened += 1
        self.stats.bytes_written += len(MAGIC)
        self.stats.fsyncs += 2
        if self._thread is not None:
            self._post(self._on_opened, path)

    def _seal(self, *, drop_if_empty: bool = False) -> Path | None:
        if self._fd < 0 or self._path is None:
            return None
        with contextlib.suppress(OSError):
            os.close(self._fd)
        path, self._fd, self._path = self._path, -1, None
        if drop_if_empty and self._file_records == 0:
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        self._post(self._on_sealed, path, self._written_upto)
        return path

    def _rotate(self) -> Path | None:
        if self._fd < 0 or self._file_records == 0:
            return None
        sealed = self._seal()
        try:
            self._open_segment()
        except OSError as exc:  # retried by the next write
            log.warning("usage spool: cannot open a new segment (%s)", exc.strerror or exc)
        return sealed

    def _write(self, batch: list[bytes], upto: int) -> bool:
        data = b"".join(batch)
        try:
            if self._fd < 0:
                self._open_segment()
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self.stats.writes += 1
            _datasync(self._fd)
            self.stats.fsyncs += 1
        except OSError as exc:
            # Never write to (or re-fsync) this file again: after a failed fsync the kernel may
            # have dropped the dirty pages. Seal it and rewrite the whole batch elsewhere.
            self.stats.write_errors += 1
            log.warning("usage spool: write failed (%s); retrying in a new segment", exc.strerror)
            self._seal()
            with self._lock:
                self._buf[:0] = batch
            self._post(self._settle, upto, exc)
            return False
        self.stats.bytes_written += len(data)
        self.stats.records_written += len(batch)
        self._file_records += len(batch)
        self._file_bytes += len(data)
        self._written_upto = upto
        self._post(self._settle, upto, None)
        if self._file_bytes >= self.segment_max_bytes:
            self._rotate()
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            with self._lock:
                batch, self._buf = self._buf, []
                upto = self._seq
                rotations, self._rotations = self._rotations, []
                closing = self._closing
            ok = not batch or self._write(batch, upto)
            if closing:
                if not ok:  # one more attempt, in a fresh segment
                    with self._lock:
                        batch, self._buf = self._buf, []
                    if not self._write(batch, upto):
                        log.error("usage spool: %d records could not be written", len(batch))
                self._post(self._resolve, rotations, self._seal(drop_if_empty=True))
                return
            if rotations:
                self._post(self._resolve, rotations, self._rotate())
            if not ok:
                time.sleep(self.flush_interval)  # back off before retrying a failing disk
