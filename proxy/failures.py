"""What the edge answers when its own code fails on the way to the upstream: never the relay.

A failure is either a dependency being away (the control plane, Redis, a database, the disk:
a retry may well succeed, so 503 with `Retry-After`) or a bug (500). Both carry the Seedance
envelope, so the SDKs raise their usual exceptions, and neither ever lets the request through.
"""

from __future__ import annotations

import sqlite3

import httpx
import redis.exceptions

from proxy.errors import EdgeError

RETRY_AFTER_SECONDS = "2"

# What "a dependency is away" looks like from here: transport errors of the control plane's
# client, its 5xx answers, Redis, SQLite (the embedded ledger, busy or unreadable), the OS.
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    OSError,  # ConnectionError and TimeoutError among them
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    sqlite3.OperationalError,
)


def is_dependency_failure(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, DEPENDENCY_ERRORS)


def dependency_unavailable(what: str = "A service the gateway depends on") -> EdgeError:
    return EdgeError(
        503,
        "ServiceUnavailable",
        f"{what} is unavailable right now; try again shortly.",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def internal_error() -> EdgeError:
    return EdgeError(500, "InternalServiceError", "The gateway failed to handle the request.")


def answer_for(exc: BaseException) -> EdgeError:
    """The edge's answer to a request whose handling raised `exc`."""
    return dependency_unavailable() if is_dependency_failure(exc) else internal_error()
