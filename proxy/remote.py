"""An edge that runs apart from its control plane: it long-polls policy snapshots (msgpack) and
ships usage batches back (msgpack). If the control plane is down, the edge keeps serving on its
last snapshot and its usage stays in the local spool until a batch is acknowledged."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import msgpack

from proxy.policy import PolicyStore, Snapshot

log = logging.getLogger(__name__)
MSGPACK = "application/msgpack"


class ControlClient:
    def __init__(self, control_url: str, token: str) -> None:
        self._client = httpx.AsyncClient(
            base_url=control_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10.0, read=40.0),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def snapshot(self, after: int, wait: float) -> dict[str, Any]:
        response = await self._client.get(
            "/v1/edge/snapshot", params={"after": after, "wait": wait}
        )
        response.raise_for_status()
        return msgpack.unpackb(response.content)

    async def ship_usage(self, records: list[dict[str, Any]]) -> None:
        """Raises unless the control plane stored the batch: the spool then keeps it."""
        response = await self._client.post(
            "/v1/edge/usage", content=msgpack.packb(records), headers={"Content-Type": MSGPACK}
        )
        response.raise_for_status()


async def poll_snapshots(client: ControlClient, store: PolicyStore, wait: float = 20.0) -> None:
    """Keep the store current: a change shows up as soon as the long poll returns."""
    backoff = 0.2
    while True:
        try:
            data = await client.snapshot(store.snapshot.version, wait)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning(
                "policy snapshot fetch failed (%s); serving on version %s",
                type(exc).__name__,
                store.snapshot.version,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
            continue
        backoff = 0.2
        store.replace(Snapshot.from_wire(data))
