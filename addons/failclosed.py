"""The edge fails closed: a request it could not fully check is answered here, never relayed.

Two guards, one for each way a check can go missing:
- `guard` wraps every request-path hook of the chain (addons/gateway.py applies it to each
  addon): an exception there answers the flow at once (503 with `Retry-After` when a dependency
  is away, 500 otherwise; proxy/failures.py), so every later addon sees an answered flow and
  stands aside. mitmproxy's own manager would log the exception and carry on, and in reverse
  mode carrying on means relaying the request half-checked.
- `FailClosed`, last in the chain: a request that reaches it without an answer is refused with
  a 500 (every request the chain handles gets its answer from an addon).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from mitmproxy import exceptions, http

from proxy.auth.authenticator import bearer
from proxy.context import METADATA_KEY, RequestContext, new_request_id
from proxy.core import keys
from proxy.failures import answer_for, internal_error, is_dependency_failure

log = logging.getLogger(__name__)
REQUEST_PATH_HOOKS = ("requestheaders", "request")


def guard[Addon](addon: Addon) -> Addon:
    """The addon, its request-path hooks made to answer the flow when they raise."""
    for name in REQUEST_PATH_HOOKS:
        hook = getattr(addon, name, None)
        if hook is not None and not is_guarded(hook):
            setattr(addon, name, _guarded(hook, f"{type(addon).__name__}.{name}"))
    return addon


def is_guarded(hook: Callable[..., Any]) -> bool:
    return getattr(hook, "fails_closed", False)


def _guarded(hook: Callable[[http.HTTPFlow], Any], where: str) -> Callable[[http.HTTPFlow], Any]:
    if inspect.iscoroutinefunction(hook):

        async def guarded_async(flow: http.HTTPFlow) -> None:
            try:
                await hook(flow)
            except exceptions.AddonHalt:
                raise
            except Exception as exc:
                answer_failure(flow, exc, where)

        guarded: Any = guarded_async
    else:

        def guarded_sync(flow: http.HTTPFlow) -> None:
            try:
                hook(flow)
            except exceptions.AddonHalt:
                raise
            except Exception as exc:
                answer_failure(flow, exc, where)

        guarded = guarded_sync
    guarded.fails_closed = True
    guarded.__wrapped__ = hook
    return guarded


def answer_failure(flow: http.HTTPFlow, exc: Exception, where: str) -> None:
    """Answers a flow whose check raised `exc` (unless an answer was already made: then the
    failure came after the decision, and the answer stands)."""
    rctx = flow.metadata.get(METADATA_KEY)
    if not isinstance(rctx, RequestContext):
        rctx = _context_before_edge(flow)
    if flow.response is not None:
        log.error("request %s: %s raised after answering", rctx.request_id, where, exc_info=exc)
        return
    error = answer_for(exc)
    if is_dependency_failure(exc):
        # Expected while a dependency is away: one line, no traceback, no message text (an
        # exception's text may quote a URL or a reply).
        log.warning(
            "request %s: %s could not reach a dependency (%s); answered %d",
            rctx.request_id,
            where,
            type(exc).__name__,
            error.status,
        )
    else:
        log.error(
            "request %s: %s failed; answered %d", rctx.request_id, where, error.status, exc_info=exc
        )
    flow.response = http.Response.make(
        error.status, error.body(), error.response_headers(rctx.request_id)
    )


def _context_before_edge(flow: http.HTTPFlow) -> RequestContext:
    """A context for a flow that failed before the Edge addon gave it one: it still gets a
    request id and, if its key parses, a usage record."""
    rctx = RequestContext(new_request_id(), None, None)
    parsed = keys.parse_key(bearer(flow.request.headers.get("authorization")) or "")
    rctx.key_id = parsed.key_id if parsed else None
    flow.metadata[METADATA_KEY] = rctx
    return rctx


class FailClosed:
    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        rctx = flow.metadata.get(METADATA_KEY)
        if isinstance(rctx, RequestContext) and rctx.forwarded_to is not None:
            # An addon sent it on to one of the edge's own servers; nothing else may have
            # changed where it goes since.
            if (flow.request.host, flow.request.port) == rctx.forwarded_to:
                return
        request_id = rctx.request_id if isinstance(rctx, RequestContext) else new_request_id()
        log.error("no addon answered %s %s; refusing it", flow.request.method, request_id)
        error = internal_error()
        flow.response = http.Response.make(500, error.body(), error.response_headers(request_id))
