"""Calls into the admin API's own handlers from inside the control plane, as a given admin: the
dashboard (control/ui/web.py) and the customer API read and write through the same code
(scopes, validation, audit) as `curl` does."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from control.api.access import SESSION_ADMIN
from control.http import ApiError
from control.store.adminauth import Admin

Handler = Callable[[Request], Awaitable[Response]]


class Target(TypedDict, total=False):
    """What an in-process API call sends its handler: the path's parameters, the query, a JSON
    body (then the method is POST unless `method` says another)."""

    path_params: dict[str, str] | None
    query: dict[str, Any] | None  # empty values left out (a form's blank fields)
    query_string: bytes | None  # instead of `query`: a request's own, exactly
    body: dict[str, Any] | None
    method: str | None


async def invoke(
    request: Request, admin: Admin, handler: Handler, **target: Unpack[Target]
) -> Response:
    """The handler's answer to a request made of `target`, on behalf of `admin`."""
    return await invoke_as(request, {SESSION_ADMIN: admin}, handler, **target)


async def invoke_as(
    request: Request, caller: Mapping[str, Any], handler: Handler, **target: Unpack[Target]
) -> Response:
    """The handler's answer to a request made of `target`, its scope holding `caller` (who
    calls: the session's admin, or a portal's customer), which no client's request can set."""
    body, query = target.get("body"), target.get("query")
    raw = json.dumps(body).encode() if body is not None else b""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": target.get("method") or ("POST" if body is not None else "GET"),
        "scheme": request.url.scheme,
        "path": request.url.path,
        "raw_path": request.url.path.encode(),
        "query_string": target.get("query_string")
        or urlencode(
            {k: v for k, v in (query or {}).items() if v not in (None, "")}, doseq=True
        ).encode(),
        "headers": [(b"content-type", b"application/json")],
        "client": request.client,
        "server": request.scope.get("server"),
        "app": request.app,
        "path_params": target.get("path_params") or {},
        **caller,
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return await handler(Request(scope, receive))


async def call(request: Request, admin: Admin, handler: Handler, **target: Unpack[Target]) -> Any:
    """The handler's JSON answer (see `invoke`); an error answer raises ApiError."""
    return answer_of(await invoke(request, admin, handler, **target))


def answer_of(response: Response) -> Any:
    """An answer's JSON; an error answer raises ApiError."""
    if response.status_code >= 400:
        raise api_error_of(response)
    return json.loads(bytes(response.body))


def api_error_of(response: Response) -> ApiError:
    """The ApiError an error answer of the API stands for (its JSON error envelope)."""
    error = json.loads(bytes(response.body)).get("error", {})
    return ApiError(response.status_code, error.get("code", "Error"), error.get("message", ""))
