"""Serving under `python -O`: without it mitmproxy type-checks every field of every HTTP message
it builds (code under `if __debug__`), a tenth of the edge's CPU per request. Imports nothing
heavy, so that run_proxy.py re-executes before the gateway's imports rather than after them."""

from __future__ import annotations

import os
import sys

NOT_SERVING = (["dev"], ["purge"])  # commands that run no edge: they keep the interpreter's flags


def reexec_optimized(argv: list[str]) -> None:
    """Re-execute this process under `-O`, unless it is already or `argv` serves nothing.
    NEXTAPI_PYTHON_DEBUG=1 keeps the checks (and asserts) on."""
    if sys.flags.optimize or os.environ.get("NEXTAPI_PYTHON_DEBUG") == "1":
        return
    if argv[:1] in NOT_SERVING:
        return
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-O", *sys.orig_argv[1:]])
