"""`run_proxy.py`, with a fault the test can trigger in any request-path hook of the chain.

A request carrying `X-Test-Fault: <Addon>.<hook>:<kind>` makes that hook raise as it starts:
`dependency` raises what a control plane that went away raises (httpx.ConnectError), `bug`
a plain RuntimeError. Everything else is the real process: the same chain, manager, spool and
control plane, so the test sees exactly what a failing addon does to a request.

Run as `python -m tests.e2e.faulty_edge <run_proxy.py's flags>` from the repository root.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import httpx
from mitmproxy import http

from addons.failclosed import REQUEST_PATH_HOOKS
from addons.gateway import chain
from addons.relay import Relay
from proxy.services import EdgeServices

FAULT_HEADER = "x-test-fault"


class InjectedBug(RuntimeError):
    pass


def chain_classes() -> list[type]:
    services = EdgeServices()
    try:
        return [type(addon) for addon in chain(services)]
    finally:
        services.auth.close()


def request_path_hooks() -> list[str]:
    """`Addon.hook` of every request-path hook that runs before the request is relayed (the
    relay's own included): a fault in any of them must stop the request."""
    hooks = []
    for cls in chain_classes():
        hooks += [f"{cls.__name__}.{name}" for name in REQUEST_PATH_HOOKS if name in vars(cls)]
        if cls is Relay:
            return hooks
    raise AssertionError("the chain has no Relay")


def _raise_if_asked(flow: http.HTTPFlow, where: str) -> None:
    hook, _, kind = flow.request.headers.get(FAULT_HEADER, "").partition(":")
    if hook != where:
        return
    if kind == "dependency":
        raise httpx.ConnectError("injected: the dependency is away")
    raise InjectedBug(f"injected fault in {where}")


def _faulty(where: str, hook: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(hook):

        async def faulty_async(self: Any, flow: http.HTTPFlow) -> Any:
            _raise_if_asked(flow, where)
            return await hook(self, flow)

        return faulty_async

    def faulty_sync(self: Any, flow: http.HTTPFlow) -> Any:
        _raise_if_asked(flow, where)
        return hook(self, flow)

    return faulty_sync


def inject_faults() -> None:
    for cls in chain_classes():
        for name in REQUEST_PATH_HOOKS:
            if name in vars(cls):
                setattr(cls, name, _faulty(f"{cls.__name__}.{name}", vars(cls)[name]))


if __name__ == "__main__":
    inject_faults()
    from launch.cli import main

    main()
