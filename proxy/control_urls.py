"""The control planes an edge apart talks to (`--control-url URL1,URL2`, replicas sharing one
database): one of them at a time, the next one on failure.

The failover rule. A call goes to the current control plane; a connection error, a timeout
(httpx's TransportError: connect, read, write, pool, a dropped connection) or a 5xx answer moves
it to the next URL of the list and tries that one at once, up to one round of the list per call.
A 4xx is an answer (the request was wrong, or not allowed, wherever it is sent) and never moves.
The move is sticky: the next call starts at the URL the last move reached, so a dead control plane
costs one failed attempt per call only until the first call that met it has moved on (with a host
that drops packets, one connect timeout). Each move is logged once, naming the URL (never the
token, which travels in a header).

Why each call can be sent again, to another replica of the same database:
- the snapshot long-poll only reads (`after`, `wait`): the next URL is simply polled instead;
- usage batches are inserted by request id (`INSERT OR IGNORE`, control/api/usage.py): a batch
  stored by a replica that then timed out is stored once, whichever replica gets it again;
- task events are kept once per task and status by the outbox's unique index
  (control/store/outbox.py, `INSERT OR IGNORE`);
- the wallet's steps are keyed by their request or task id (control/store/wallet.py): a
  reservation's row is keyed by the create's request id (its primary key), and a reserve asked
  again for a request id that already holds answers "held" rather than reserving twice; assign
  and release are conditional updates (a second is a no-op); settle charges only a hold still
  `held` (a second answers None); an idempotency claim made again by the same request is its
  own (control/store/idempotency.py); the rest only read."""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)

MOST_CONTROL_URLS = 8
SCHEMES = ("http://", "https://")
RULE = f"1 to {MOST_CONTROL_URLS} http:// or https:// URLs, separated by commas"


def split_control_urls(value: str) -> list[str]:
    """The URLs of a `control_url` value, in order, each without a trailing slash (spaces around
    an element are ignored). Raises ValueError saying what is wrong; empty: none."""
    if not value.strip():
        return []
    urls = [element.strip() for element in value.split(",")]
    if len(urls) > MOST_CONTROL_URLS:
        raise ValueError(f"{len(urls)} URLs given")
    for position, url in enumerate(urls, 1):
        if not url:
            raise ValueError(f"URL {position} is empty")
        host = url.partition("://")[2]
        if not url.startswith(SCHEMES) or not host or host.startswith("/"):
            raise ValueError(f"URL {position} ({url}) is not http:// or https://HOST")
    return [url.rstrip("/") for url in urls]


def control_urls_problem(value: str) -> str | None:
    """The `control_url` option's check (proxy/options/checks.py); empty: not set."""
    try:
        split_control_urls(value)
    except ValueError as exc:
        return f"must be {RULE} ({exc})"
    return None


def fails_over(response: httpx.Response) -> bool:
    return response.status_code >= 500


class ControlPlanes:
    """The list of control-plane URLs and the one in use ("current"), over one HTTP client.
    Free of mitmproxy; proxy/remote.py's ControlClient sends every call through `request`."""

    def __init__(
        self,
        urls: list[str],
        headers: dict[str, str],
        timeout: httpx.Timeout,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not urls:
            raise ValueError("no control-plane URL")
        self.urls = urls
        self._current = 0
        self._client = httpx.AsyncClient(
            headers=headers, timeout=timeout, trust_env=False, transport=transport
        )

    @property
    def current(self) -> str:
        return self.urls[self._current]

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """`method path` at the current control plane, then at the next ones on a connection
        error, a timeout or a 5xx, each URL once. The last failure raises (a transport error) or
        is answered (a 5xx: its caller's raise_for_status raises)."""
        start = self._current
        for attempt in range(len(self.urls)):
            index = (start + attempt) % len(self.urls)
            last = attempt + 1 == len(self.urls)
            try:
                response = await self._client.request(method, self.urls[index] + path, **kwargs)
            except httpx.TransportError as exc:
                if last:
                    raise
                self._move_from(index, type(exc).__name__)
                continue
            if not fails_over(response) or last:
                return response
            self._move_from(index, f"HTTP {response.status_code}")
        raise AssertionError("unreachable")

    def _move_from(self, index: int, why: str) -> None:
        """Move past `index`, unless a call that failed there too has moved already (calls run
        concurrently: each move is made, and logged, once)."""
        if self._current != index:
            return
        self._current = (index + 1) % len(self.urls)
        log.warning(
            "control plane %s failed (%s); moving to %s", self.urls[index], why, self.current
        )
