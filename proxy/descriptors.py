"""File descriptors: a process starts with its open-files limit raised to the hard limit (the
soft one is often 1,024, which a modest flood of idle connections fills), keeps a reserve of
them that client connections cannot take, and says "out of descriptors" once a second, not
once a failed accept (asyncio retries an accept per pending connection, each one logged with
its traceback: 58 MB of log in 40 s were seen)."""

from __future__ import annotations

import errno
import logging
import resource
import time
from collections.abc import Callable

OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)
NO_LIMIT_CAP = 1 << 20  # what "unlimited" is raised to (Linux's default nr_open)


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = NO_LIMIT_CAP if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft  # (a limit above the kernel's nr_open: keep the soft one)
        return target
    return NO_LIMIT_CAP if soft == resource.RLIM_INFINITY else soft


def client_connection_budget(limit: int | None = None) -> int:
    """How many client connections the edge may hold with `limit` descriptors (this process's
    soft limit by default): the rest is kept for the control plane's listener and clients, the
    upstream pool, Redis, the databases, the spool and the logs."""
    if limit is None:
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if limit == resource.RLIM_INFINITY:
            limit = NO_LIMIT_CAP
    reserve = min(max(256, limit // 8), limit // 2)
    return max(1, limit - reserve)


def out_of_descriptors(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    return isinstance(exc, OSError) and exc.errno in OUT_OF_DESCRIPTORS


class DescriptorExhaustionLog(logging.Filter):
    """On a handler: records of a failure for want of descriptors become one line a second,
    without a traceback, counting those held back; every other record passes untouched."""

    def __init__(self, every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every = every
        self.clock = clock
        self.last = float("-inf")
        self.held_back = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not out_of_descriptors(record):
            return True
        now = self.clock()
        if now - self.last < self.every:
            self.held_back += 1
            return False
        assert record.exc_info is not None
        exc = record.exc_info[1]
        more = f"; {self.held_back} more since the last line" if self.held_back else ""
        record.msg = "out of file descriptors (%s): new connections wait for one%s"
        record.args = (exc, more)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        self.last, self.held_back = now, 0
        return True
