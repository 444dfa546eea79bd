"""The relay's own upstream client.

mitmproxy would answer an unreachable upstream with its own HTML page and has no response
timeout, so the relay makes the upstream call itself (proxy/upstream/http1.py): pooled keep-alive
connections, explicit connect and read timeouts, failures turned into the 502/504 envelope.
Bodies pass through as they are, compressed or not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from proxy.errors import EdgeError, upstream_timeout, upstream_unavailable
from proxy.upstream.http1 import Answer, Http1Pool, ProtocolError

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 §7.6.1), and what a client could use to spoof its origin or
# credentials upstream: none of these are forwarded.
_DROP_REQUEST = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "authorization",
        "cookie",
        "forwarded",
        "via",
        "x-real-ip",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-forwarded-server",
        "x-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "idempotency-key",  # the edge's own: answered here, meaningless upstream
    }
)
_DROP_RESPONSE = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "set-cookie",
        "server",
        "x-request-id",
    }
)

_DROP_REQUEST_RAW = frozenset(name.encode() for name in _DROP_REQUEST)
_DROP_RESPONSE_RAW = frozenset(name.encode() for name in _DROP_RESPONSE)


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    content: bytes
    latency_ms: float
    request_id: str | None


class UpstreamClient:
    def __init__(
        self, api_key: str, *, connect_timeout: float = 10.0, timeout: float = 60.0
    ) -> None:
        self._authorization = (b"Authorization", f"Bearer {api_key}".encode())
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._pools: dict[str, Http1Pool] = {}

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.close()

    def _pool(self, origin: str) -> Http1Pool:
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = Http1Pool(origin)
        return pool

    async def send(
        self,
        method: str,
        origin: str,
        target: str,
        headers: Iterable[tuple[bytes, bytes]],
        content: bytes,
    ) -> UpstreamResponse | EdgeError:
        """Relay one request to `origin` (scheme://host:port); `target` is path and query."""
        forwarded = [(k, v) for k, v in headers if k.lower() not in _DROP_REQUEST_RAW]
        forwarded.append(self._authorization)
        path = target.split("?", 1)[0]
        started = time.perf_counter()
        try:
            answer = await self._pool(origin).request(
                method,
                target,
                forwarded,
                content,
                connect_timeout=self._connect_timeout,
                read_timeout=self._timeout,
            )
        except TimeoutError:
            log.warning("upstream timeout: %s %s", method, path)
            return upstream_timeout()
        except (OSError, ProtocolError, asyncio.IncompleteReadError) as exc:
            log.warning("upstream unreachable: %s %s (%s)", method, path, type(exc).__name__)
            return upstream_unavailable()
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        upstream_request_id = next(
            (v.decode("latin-1") for k, v in answer.headers if k.lower() == b"x-request-id"), None
        )
        if answer.status in (401, 403) and _is_auth_error(answer):
            # Our upstream credential was refused: not the customer's fault, and their key is fine.
            log.error("upstream refused the gateway's credential (status %s)", answer.status)
            return upstream_unavailable("The upstream service refused the gateway's credential.")
        if answer.status >= 500:
            log.warning("upstream answered %s for %s %s", answer.status, method, path)
            return upstream_unavailable(f"The upstream service failed (status {answer.status}).")
        kept = [(k, v) for k, v in answer.headers if k.lower() not in _DROP_RESPONSE_RAW]
        if upstream_request_id:
            kept.append((b"X-Upstream-Request-Id", upstream_request_id.encode()))
        return UpstreamResponse(
            answer.status, kept, answer.content, latency_ms, upstream_request_id
        )


def _is_auth_error(answer: Answer) -> bool:
    if answer.status == 401:
        return True
    try:
        code = json.loads(answer.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return code in ("AuthenticationError", "AccountOverdueError")
