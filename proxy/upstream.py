"""The relay's own upstream client.

mitmproxy would answer an unreachable upstream with its own HTML page and has no response
timeout, so the relay makes the upstream call itself: pooled keep-alive connections, explicit
connect and read timeouts, failures turned into the edge's 502/504 envelope.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from proxy.errors import EdgeError, upstream_timeout, upstream_unavailable

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
        "accept-encoding",
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
        "content-encoding",
        "set-cookie",
        "server",
        "x-request-id",
    }
)


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: list[tuple[str, str]]
    content: bytes
    latency_ms: float
    request_id: str | None


class UpstreamClient:
    def __init__(
        self,
        api_key: str,
        *,
        connect_timeout: float = 10.0,
        timeout: float = 60.0,
        max_connections: int = 200,
    ) -> None:
        self._api_key = api_key
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(
        self, method: str, url: str, headers: Iterable[tuple[str, str]], content: bytes
    ) -> UpstreamResponse | EdgeError:
        forwarded = [(k, v) for k, v in headers if k.lower() not in _DROP_REQUEST]
        forwarded.append(("Authorization", f"Bearer {self._api_key}"))
        started = time.perf_counter()
        try:
            response = await self._client.request(method, url, headers=forwarded, content=content)
        except httpx.TimeoutException as exc:
            log.warning("upstream timeout: %s %s (%s)", method, _path(url), type(exc).__name__)
            return upstream_timeout()
        except httpx.HTTPError as exc:
            log.warning("upstream unreachable: %s %s (%s)", method, _path(url), type(exc).__name__)
            return upstream_unavailable()
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        upstream_request_id = response.headers.get("x-request-id")
        if response.status_code in (401, 403) and _is_auth_error(response):
            # Our upstream credential was refused: not the customer's fault, and their key is fine.
            log.error("upstream refused the gateway's credential (status %s)", response.status_code)
            return upstream_unavailable("The upstream service refused the gateway's credential.")
        if response.status_code >= 500:
            log.warning("upstream answered %s for %s %s", response.status_code, method, _path(url))
            return upstream_unavailable(
                f"The upstream service failed (status {response.status_code})."
            )
        kept = [(k, v) for k, v in response.headers.items() if k.lower() not in _DROP_RESPONSE]
        if upstream_request_id:
            kept.append(("X-Upstream-Request-Id", upstream_request_id))
        return UpstreamResponse(
            response.status_code, kept, response.content, latency_ms, upstream_request_id
        )


def _is_auth_error(response: httpx.Response) -> bool:
    if response.status_code == 401:
        return True
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return code in ("AuthenticationError", "AccountOverdueError")


def _path(url: str) -> str:
    # Logs carry the path only: never a query string that might hold customer data.
    return httpx.URL(url).path
