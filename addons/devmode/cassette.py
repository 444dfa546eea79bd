"""Cassettes: caught exchanges in a JSON Lines file, written as they happen, replayed in order.

Line 1 is the header `{"nextapi_cassette": 1}`; every other line is one exchange:

    {"method": "POST", "host": "ark.ap-southeast.bytepluses.com",
     "path": "/api/v3/contents/generations/tasks", "query": "",
     "request": {"headers": [["content-type", "application/json"], …], "json": {…}},
     "response": {"status": 200, "headers": [[…]], "json": {"id": "cgt-…"}}}

A body is `json` (a JSON value), `text` (UTF-8) or `base64` (anything else), or absent when
empty. Credentials are redacted before a line is written (no key, no `Authorization`). Replay
answers each (method, path, query) with its recorded answers in order; a GET then holds its
last answer (polls of a task move through its states and stay at the final one), while other
methods are answered once per recording.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from addons.devmode import redact

VERSION = 1
HEADER = {"nextapi_cassette": VERSION}


class CassetteError(ValueError):
    """A cassette that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Recorded:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Exchange:
    method: str
    host: str
    path: str
    query: str
    response: Recorded

    @property
    def key(self) -> tuple[str, str, str]:
        return match_key(self.method, self.path, self.query)


def match_key(method: str, path: str, query: str) -> tuple[str, str, str]:
    if len(path) > 1:
        path = path.rstrip("/")
    return method.upper(), path, query


# --- writing -------------------------------------------------------------------------------------


def encode_body(raw: bytes, *, redacted: bool) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        pass
    else:
        return {"json": redact.data(value) if redacted else value}
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}
    return {"text": redact.text(decoded) if redacted else decoded}


class CassetteWriter:
    """Appends one line per exchange and flushes it, so a crash loses at most the call in
    flight."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("w", encoding="utf-8")
        self._line(HEADER)

    def _line(self, value: dict[str, Any]) -> None:
        self._file.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def write(
        self,
        *,
        method: str,
        host: str,
        path: str,
        query: str,
        request_headers: list[tuple[str, str]],
        request_body: bytes,
        status: int,
        response_headers: list[tuple[str, str]],
        response_body: bytes,
    ) -> None:
        self._line(
            {
                "method": method,
                "host": host,
                "path": path,
                "query": redact.text(query),
                "request": {
                    "headers": redact.headers(request_headers),
                    **encode_body(request_body, redacted=True),
                },
                "response": {
                    "status": status,
                    "headers": redact.headers(response_headers),
                    # The answer is replayed as recorded; only credential shapes are masked.
                    **encode_body(response_body, redacted=True),
                },
            }
        )

    def close(self) -> None:
        self._file.close()


# --- reading -------------------------------------------------------------------------------------


def _decode_body(part: dict[str, Any], where: str) -> bytes:
    kinds = [k for k in ("json", "text", "base64") if k in part]
    if len(kinds) > 1:
        raise CassetteError(f"{where}: a body may be only one of json, text, base64")
    if not kinds:
        return b""
    value = part[kinds[0]]
    if kinds[0] == "json":
        return json.dumps(value, ensure_ascii=False).encode()
    if not isinstance(value, str):
        raise CassetteError(f"{where}: `{kinds[0]}` must be a string")
    if kinds[0] == "text":
        return value.encode()
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise CassetteError(f"{where}: `base64` is not valid base64") from exc


def _headers(value: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(value, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        for pair in value
    ):
        raise CassetteError(f"{where}: `headers` must be a list of [name, value] strings")
    return [(name, val) for name, val in value]


def _exchange(value: Any, where: str) -> Exchange:
    if not isinstance(value, dict):
        raise CassetteError(f"{where}: an exchange must be a JSON object")
    for name in ("method", "path", "response"):
        if name not in value:
            raise CassetteError(f"{where}: missing `{name}`")
    method, path = value["method"], value["path"]
    if not isinstance(method, str) or not method.isalpha():
        raise CassetteError(f"{where}: `method` must be an HTTP method")
    if not isinstance(path, str) or not path.startswith("/"):
        raise CassetteError(f"{where}: `path` must start with /")
    query = value.get("query", "")
    host = value.get("host", "")
    if not isinstance(query, str) or not isinstance(host, str):
        raise CassetteError(f"{where}: `query` and `host` must be strings")
    response = value["response"]
    if not isinstance(response, dict):
        raise CassetteError(f"{where}: `response` must be a JSON object")
    status = response.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise CassetteError(f"{where}: `response.status` must be an HTTP status (100–599)")
    recorded = Recorded(
        status,
        _headers(response.get("headers", []), f"{where}: response"),
        _decode_body(response, f"{where}: response"),
    )
    return Exchange(method.upper(), host, path, query, recorded)


def load(path: Path) -> list[Exchange]:
    """Every exchange of a cassette, in order; CassetteError naming the file and line of the
    first problem."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise CassetteError(f"{path}: no such cassette") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CassetteError(f"{path}: cannot be read ({exc})") from exc
    exchanges: list[Exchange] = []
    for number, line in enumerate(lines, start=1):
        where = f"{path}:{number}"
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise CassetteError(f"{where}: not valid JSON ({exc})") from exc
        if number == 1:
            if value != HEADER:
                raise CassetteError(f"{where}: not a cassette (expected {json.dumps(HEADER)})")
            continue
        exchanges.append(_exchange(value, where))
    if not lines:
        raise CassetteError(f"{path}:1: empty file, not a cassette")
    return exchanges


class ReplayBook:
    """Answers in recorded order per (method, path, query)."""

    def __init__(self, exchanges: list[Exchange]) -> None:
        self._queues: dict[tuple[str, str, str], deque[Exchange]] = {}
        for exchange in exchanges:
            self._queues.setdefault(exchange.key, deque()).append(exchange)

    def answer(self, method: str, path: str, query: str) -> Recorded | None:
        queue = self._queues.get(match_key(method, path, query))
        if not queue:
            return None
        if len(queue) == 1 and queue[0].method in ("GET", "HEAD"):
            return queue[0].response  # hold the last state
        return queue.popleft().response
