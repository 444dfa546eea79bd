"""The addresses a start listens on, checked before anything starts: a taken port ends the
start in one sentence and a non-zero exit rather than a traceback or a process without a port."""

from __future__ import annotations

import errno

from launch.serving import bind
from launch.settings import Settings, split_hostport


def cannot_listen(what: str, flag: str, address: str, exc: OSError) -> str:
    reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"fails: {exc.strerror}"
    return (
        f"cannot start: {what}'s address {address} {reason}; "
        f"stop what holds it or choose another with {flag} HOST:PORT"
    )


def check_addresses(settings: Settings, *, edge: bool) -> None:
    """Stop with one sentence, before anything starts, if an address to listen on is taken
    (uvicorn would raise a traceback, mitmproxy would log and keep running without a port)."""
    wanted = []
    if settings.demo:
        wanted.append(("the simulator", "--simulator-listen", settings.simulator_listen))
    if settings.role in ("all", "control"):
        wanted.append(("the control plane", "--control-listen", settings.control_listen))
    if edge and settings.role in ("all", "edge"):
        wanted.append(("the edge", "--listen", settings.listen))
    for what, flag, address in wanted:
        host, port = split_hostport(address, flag)
        if port == 0:
            continue
        try:
            bind(host, port).close()
        except OSError as exc:
            raise SystemExit(cannot_listen(what, flag, address, exc)) from None
