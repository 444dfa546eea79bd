"""The open-files limit raised at start, the reserve kept from clients, and out-of-descriptor
failures logged once a second."""

from __future__ import annotations

import errno
import logging
import resource
import subprocess
import sys

from proxy.descriptors import DescriptorExhaustionLog, client_connection_budget


def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    # In a child, so that this process's own limits stay as they are.
    code = (
        "import resource\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))\n"
        "from proxy.descriptors import raise_open_files_limit\n"
        "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    returned, soft, hard = out.stdout.split()
    if int(hard) == resource.RLIM_INFINITY:
        assert int(soft) == int(returned) == 1 << 20
    else:
        assert int(soft) == int(returned) == int(hard)


def test_the_budget_keeps_a_reserve_for_everything_else() -> None:
    assert client_connection_budget(1_048_576) == 1_048_576 - 131_072  # an eighth
    assert client_connection_budget(1024) == 1024 - 256  # at least 256
    assert client_connection_budget(300) == 150  # but never more than half
    assert client_connection_budget(1) == 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(exc: BaseException | None) -> logging.LogRecord:
    info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("mitmproxy.master", logging.ERROR, "", 0, "Unhandled", (), info)


def test_out_of_descriptor_errors_are_one_line_a_second_without_a_traceback() -> None:
    clock = Clock()
    condense = DescriptorExhaustionLog(clock=clock)
    emfile = OSError(errno.EMFILE, "Too many open files")
    first = record(emfile)
    assert condense.filter(first)
    assert first.exc_info is None and first.levelname == "WARNING"
    assert first.getMessage().startswith("out of file descriptors ([Errno 24]")
    assert [condense.filter(record(emfile)) for _ in range(1000)] == [False] * 1000
    clock.now = 1.0
    later = record(OSError(errno.ENFILE, "Too many open files in system"))
    assert condense.filter(later)
    assert "1000 more since the last line" in later.getMessage()


def test_other_records_pass_untouched() -> None:
    condense = DescriptorExhaustionLog(clock=Clock())
    for exc in (None, OSError(errno.ECONNRESET, "reset"), ValueError("x")):
        rec = record(exc)
        assert condense.filter(rec) and rec.levelno == logging.ERROR and rec.msg == "Unhandled"
