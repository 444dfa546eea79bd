"""Small helpers the control plane's handlers share: errors, JSON in and out, times, cursors."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

EARLIEST = 0.0  # 1970-01-01T00:00:00Z
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "InvalidParameter", message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "NotFound", f"{what} not found.")


def conflict(message: str) -> ApiError:
    return ApiError(409, "Conflict", message)


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message}},
        status_code=error.status,
        headers=error.headers or None,
    )


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


async def bounded_body(request: Request, limit: int, shown: str) -> bytes:
    """The body, refused (413) past `limit` bytes as it arrives: for public routes (others'
    webhooks), where an unsigned body is never held whole whatever its size."""
    too_large = ApiError(413, "PayloadTooLarge", f"The body is larger than {shown}.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any, field: str) -> float:
    if not isinstance(value, str):
        raise bad_request(f"`{field}` must be an RFC 3339 time string.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad_request(f"`{field}` must be an RFC 3339 time string.") from None
    if parsed.tzinfo is None:
        raise bad_request(f"`{field}` must carry a time zone (e.g. `Z`).")
    timestamp = parsed.timestamp()
    if not EARLIEST <= timestamp <= LATEST:
        raise bad_request(f"`{field}` must be between 1970 and 9999 (UTC).")
    return timestamp


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


# A cursor holds a few ids and times: anything longer was not made by encode_cursor, and a long
# one could nest lists deep enough to exhaust the JSON parser's recursion.
MAX_CURSOR_CHARS = 1024


def decode_cursor(cursor: str, *shape: type) -> list[Any]:
    """The parts of a cursor made by `encode_cursor`, checked against the expected types."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise bad_request("`cursor` is not valid.")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, RecursionError):
        raise bad_request("`cursor` is not valid.") from None
    if (
        not isinstance(parts, list)
        or len(parts) != len(shape)
        or not all(_is(part, kind) for part, kind in zip(parts, shape, strict=True))
    ):
        raise bad_request("`cursor` is not valid.")
    return parts


def _is(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def page_limit(request: Request, default: int = 100, maximum: int = 1000) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise bad_request(f"`limit` must be an integer from 1 to {maximum}.")
    return int(raw)


def by_path(routes: list[Route]) -> list[Route]:
    """One Route per path, dispatching on the method: Starlette stops at the first route whose
    path matches, so separate routes for GET and POST of one path would answer a 405 whose
    `Allow` names only the first."""
    handlers: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for route in routes:
        for method in route.methods or ():
            handlers.setdefault(route.path, {})[method] = route.endpoint
    merged = []
    for path, by_method in handlers.items():

        async def dispatch(request: Request, by_method=by_method) -> Response:
            return await by_method[request.method](request)

        merged.append(Route(path, dispatch, methods=list(by_method)))
    return merged
