"""A Starlette app that behaves like the Seedance task API (see SEEDANCE.md, in the repository at
docs/contributors/seedance-upstream.md).

API routes (`/api/v3/contents/generations/tasks…`) pass, in this order: the request log, the
`latency_ms` delay, `fixed_status`, the API key check (401 `AuthenticationError`) and the
`error_rate` draw (500 `InternalServiceError`). Inspection routes under `/_sim/` skip all but
the log. Every response carries `X-Request-Id`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulator.callback_delivery import CallbackDispatcher
from simulator.config import ConfigError, SimulatorConfig
from simulator.errors import ApiError, bad_request, error_response
from simulator.state import SimState
from simulator.tasks import SERVICE_TIERS, STATUSES, Task, parse_create

__all__ = ["SimulatorConfig", "create_app"]

TASKS_PATH = "/api/v3/contents/generations/tasks"
LIST_WINDOW_SECONDS = 7 * 86400
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free"


def record_routes(path: str, records: deque[dict[str, Any]]) -> list[Route]:
    """GET lists what the simulator recorded (requests it took, callbacks it sent); DELETE
    forgets it, answering how many it forgot."""

    async def listed(request: Request) -> Response:
        return JSONResponse(list(records))

    async def cleared(request: Request) -> Response:
        count = len(records)
        records.clear()
        return JSONResponse({"cleared": count})

    return [Route(path, listed, methods=["GET"]), Route(path, cleared, methods=["DELETE"])]


@functools.lru_cache(maxsize=8)  # the same few videos are fetched again and again in benches
def fake_video(name: str, size: int) -> bytes:
    """`size` bytes: an MP4 header, then filler that differs by name and position (a test can
    check any range of a copy against the original)."""
    shift = hashlib.sha256(name.encode()).digest()[0]
    cycle = bytes((shift + i) % 251 for i in range(251))  # a prime period: offsets show
    filler = cycle * ((size // 251) + 1)
    return (FAKE_MP4 + filler)[:size] if size > len(FAKE_MP4) else FAKE_MP4


FAKE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


class SimMiddleware:
    """Logs every request, injects the fault knobs on API routes and adds `X-Request-Id`."""

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(10)
        body = await _read_body(receive)
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.state.requests.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope["query_string"].decode("latin-1"),
                "headers": headers,
                "body_size": len(body),
                # What arrived, byte for byte (as latin-1 text), for the pass-through tests.
                "body": body.decode("latin-1") if len(body) <= 2**20 else None,
            }
        )

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-request-id", request_id.encode())]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if scope["path"].startswith("/api/"):
            fault = await self._fault(headers)
            if fault is not None:
                await fault(scope, replay, send_with_id)
                return
        await self.app(scope, replay, send_with_id)

    async def _fault(self, headers: dict[str, str]) -> Response | None:
        config = self.state.config
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        if config.fixed_status is not None:
            return error_response(config.fixed_status, "Simulated failure (fixed_status).")
        if config.api_key is not None:
            given = headers.get("authorization", "").encode()
            if not secrets.compare_digest(given, f"Bearer {config.api_key}".encode()):
                return error_response(
                    401,
                    "The API key or AK/SK in the request is missing or invalid.",
                    code="AuthenticationError",
                )
        if config.error_rate and self.state.faults.random() < config.error_rate:
            return error_response(500, "Simulated internal error (error_rate).")
        return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "InvalidParameter", "The request body is not valid JSON.") from exc


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _int_query(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(name, f"{name} must be an integer") from exc
    if not low <= value <= high:
        raise bad_request(name, f"{name} must be between {low} and {high}")
    return value


def _routes(state: SimState) -> list[Route]:
    def find(task_id: str) -> Task:
        task = state.tasks.get(task_id)
        if task is None:
            raise ApiError(404, "ResourceNotFound", f"The specified task {task_id} is not found.")
        return task

    async def create_task(request: Request) -> Response:
        body = await _json_body(request)
        now = state.clock()
        config = state.config
        task = parse_create(
            body,
            task_id=state.new_task_id(now),
            now=now,
            base_url=_base_url(request),
            rng=state.random,
            fail=config.fail_tasks,
            queued_seconds=config.queued_seconds,
            running_seconds=config.running_seconds,
        )
        if state.queued_count(now) >= config.max_queued:
            message = f"Too many queued tasks (at most {config.max_queued}); try again later."
            raise ApiError(429, "QuotaExceeded", message)
        state.tasks[task.id] = task
        return JSONResponse({"id": task.id})

    async def list_tasks(request: Request) -> Response:
        page_num = _int_query(request, "page_num", 1, 1, 1_000_000)
        page_size = _int_query(request, "page_size", 10, 1, 500)
        query = request.query_params
        status = query.get("filter.status") or None
        if status is not None and status not in STATUSES:
            raise bad_request("filter.status", f"filter.status must be one of {STATUSES}")
        tier = query.get("filter.service_tier") or None
        if tier is not None and tier not in SERVICE_TIERS:
            raise bad_request("filter.service_tier", "filter.service_tier must be default or flex")
        model = query.get("filter.model") or None
        ids = {i for i in query.getlist("filter.task_ids") if i}
        now = state.clock()
        newest_first = sorted(
            reversed(state.tasks.values()), key=lambda task: task.created_at, reverse=True
        )
        matched = [
            task
            for task in newest_first
            if task.created_at >= now - LIST_WINDOW_SECONDS
            and (status is None or task.status(now) == status)
            and (model is None or task.model == model)
            and (tier is None or task.service_tier == tier)
            and (not ids or task.id in ids)
        ]
        page = matched[(page_num - 1) * page_size : page_num * page_size]
        base = _base_url(request)
        return JSONResponse(
            {"items": [task.view(now, base) for task in page], "total": len(matched)}
        )

    async def get_task(request: Request) -> Response:
        task = find(request.path_params["task_id"])
        return JSONResponse(task.view(state.clock(), _base_url(request)))

    async def delete_task(request: Request) -> Response:
        task = find(request.path_params["task_id"])
        now = state.clock()
        status = task.status(now)
        if status == "queued":
            task.cancelled_at = now
        elif status in ("succeeded", "failed", "expired"):
            del state.tasks[task.id]
        else:
            message = f"A task in status {status!r} cannot be cancelled or deleted."
            raise ApiError(400, "OperationDenied", message, "id")
        return Response(status_code=200)

    async def get_config(request: Request) -> Response:
        return JSONResponse(state.config.public())

    async def patch_config(request: Request) -> Response:
        changes = await _json_body(request)
        if not isinstance(changes, dict):
            raise ApiError(400, "InvalidParameter", "The body must be a JSON object.")
        try:
            state.configure(changes)
        except ConfigError as exc:
            raise bad_request(exc.param, str(exc)) from exc
        return JSONResponse(state.config.public())

    async def video(request: Request) -> Response:
        name = request.path_params["name"]
        state.downloads[name] = state.downloads.get(name, 0) + 1
        return Response(fake_video(name, state.config.video_bytes), media_type="video/mp4")

    async def frame(request: Request) -> Response:
        name = request.path_params["name"]
        state.downloads[name] = state.downloads.get(name, 0) + 1
        return Response(FAKE_PNG, media_type="image/png")

    async def get_downloads(request: Request) -> Response:
        return JSONResponse(state.downloads)

    return [
        Route(TASKS_PATH, create_task, methods=["POST"]),
        Route(TASKS_PATH, list_tasks, methods=["GET"]),
        Route(TASKS_PATH + "/", list_tasks, methods=["GET"]),
        Route(TASKS_PATH + "/{task_id}", get_task, methods=["GET"]),
        Route(TASKS_PATH + "/{task_id}", delete_task, methods=["DELETE"]),
        *record_routes("/_sim/requests", state.requests),
        Route("/_sim/config", get_config, methods=["GET"]),
        Route("/_sim/config", patch_config, methods=["PATCH"]),
        *record_routes("/_sim/callbacks", state.callbacks),
        Route("/_sim/videos/{name}", video, methods=["GET"]),
        Route("/_sim/frames/{name}", frame, methods=["GET"]),
        Route("/_sim/downloads", get_downloads, methods=["GET"]),
    ]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, code=exc.code, param=exc.param)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = "NotFound" if exc.status_code == 404 else None
    return error_response(exc.status_code, str(exc.detail), code=code)


def create_app(
    config: SimulatorConfig | None = None, *, clock: Callable[[], float] = time.time
) -> Starlette:
    """The simulator app. Its state (knobs, tasks, logs) is at `app.state.sim` (a SimState);
    the callback ticker runs while the app's lifespan is active."""
    state = SimState(config or SimulatorConfig(), clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ticker = asyncio.create_task(CallbackDispatcher(state).run())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    app = Starlette(
        routes=_routes(state),
        middleware=[Middleware(SimMiddleware, state=state)],
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.sim = state
    return app
