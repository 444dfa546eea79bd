"""The Redis client the shared counters use (rate-limit windows and concurrency slots)."""

from __future__ import annotations

import redis.asyncio


def blocking_client(url: str, max_connections: int) -> redis.asyncio.Redis:
    """A client on a blocking pool: a burst of more concurrent calls than connections waits (up
    to 2 s) for one, where redis-py's default pool would raise MaxConnectionsError (a
    ConnectionError that a fail-open caller would turn into "no limits" exactly when load
    peaks). Calls time out after 1 s."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=2.0,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
    )
    return redis.asyncio.Redis.from_pool(pool)
