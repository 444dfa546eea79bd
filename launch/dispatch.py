"""The edge master's addon manager (launch/edge.py sets it): it calls, for each event, only the
addons that have a handler for it.

mitmproxy's manager walks every addon for every event, looks the handler up by name, enters a
context manager per addon and rebuilds the event's arguments per handler; and after each flow
event it sends an `update` event through the whole chain again. With the gateway's twenty addons
that was about 160 addon visits per request and the largest share of the edge's own CPU. Here
the handlers of each event are listed once (again whenever an addon is added or removed), the
arguments are built once per event, and `update` is skipped when no addon handles it.

Semantics kept: addons run in chain order, children after their parent; an exception in one
addon is logged (as mitmproxy's `safecall` does) and the next addon still runs; `AddonHalt`
stops the event. On the request path no exception gets this far: the chain's hooks are guarded
(addons/failclosed.py), so that the edge fails closed under mitmproxy's own manager too.
"""

from __future__ import annotations

import inspect
import logging
import types
from collections.abc import Callable
from typing import Any

from mitmproxy import exceptions, flow, hooks
from mitmproxy.addonmanager import AddonManager, cut_traceback, traverse

logger = logging.getLogger("mitmproxy.addonmanager")

Handlers = list[list[Callable[..., Any]]]  # per top-level addon, its (and its children's)


class DirectAddonManager(AddonManager):
    def __init__(self, master: Any) -> None:
        super().__init__(master)
        self._handlers: dict[str, Handlers] = {}

    def register(self, addon: Any) -> Any:
        self._handlers.clear()
        return super().register(addon)

    def add(self, *addons: Any) -> None:
        super().add(*addons)
        self._handlers.clear()

    def remove(self, addon: Any) -> None:
        self._handlers.clear()
        super().remove(addon)
        self._handlers.clear()

    def _handlers_for(self, name: str) -> Handlers:
        handlers = self._handlers.get(name)
        if handlers is None:
            handlers = []
            for top in self.chain:
                funcs = []
                for addon in traverse([top]):
                    func = getattr(addon, name, None)
                    if func is None or isinstance(func, types.ModuleType):
                        continue
                    if not callable(func):
                        raise exceptions.AddonManagerError(
                            f"Addon handler {name} ({addon}) not callable"
                        )
                    funcs.append(func)
                if funcs:
                    handlers.append(funcs)
            self._handlers[name] = handlers
        return handlers

    async def trigger_event(self, event: hooks.Hook) -> None:
        handlers = self._handlers_for(event.name)
        if not handlers:
            return
        args = event.args()
        for funcs in handlers:
            try:
                for func in funcs:
                    result = func(*args)
                    if result is not None and inspect.isawaitable(result):
                        await result
            except exceptions.AddonHalt:
                return
            except exceptions.OptionsError:
                raise
            except Exception as exc:
                tb = cut_traceback(exc.__traceback__, "trigger_event")
                logger.error(f"Addon error: {exc}", exc_info=(type(exc), exc, tb))

    async def handle_lifecycle(self, event: hooks.Hook) -> None:
        await self.trigger_event(event)
        message = event.args()[0]
        if isinstance(message, flow.Flow) and self._handlers_for("update"):
            await self.trigger_event(hooks.UpdateHook([message]))
