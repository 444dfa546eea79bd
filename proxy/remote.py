"""An edge that runs apart from its control plane: it long-polls policy snapshots (msgpack) and
ships usage batches back (msgpack). If the control plane is down, the edge keeps serving on its
last snapshot and its usage stays in the local spool until a batch is acknowledged."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgpack

from proxy.control_urls import ControlPlanes, split_control_urls
from proxy.core.idempotency import Claim
from proxy.core.wallet import Hold, Refusal
from proxy.policy import PolicyStore, Snapshot
from proxy.policy_file import SnapshotFile

log = logging.getLogger(__name__)
MSGPACK = "application/msgpack"


Report = Callable[[], dict[str, Any]]


def report_headers(report: dict[str, Any]) -> dict[str, str]:
    """The edge's report (EdgeServices.report) as the headers the control plane records
    (control/store/edges.py); a control plane that does not know them ignores them."""
    headers = {"X-Edge-Id": str(report["id"]), "X-Edge-Counters": str(report["counters"])}
    headers["X-Edge-Snapshot-Version"] = str(report["snapshot_version"])
    if report.get("spool_backlog") is not None:
        headers["X-Edge-Spool-Backlog"] = str(report["spool_backlog"])
    return headers


class ControlClient:
    """The control plane's edge API, at one URL or the first that answers of several
    (`control_url` "URL1,URL2": proxy/control_urls.py says when a call moves to the next and
    why every call here may be sent again)."""

    def __init__(
        self,
        control_url: str,
        token: str,
        report: Report | None = None,
        transport: httpx.AsyncBaseTransport | None = None,  # tests: the app in-process
    ) -> None:
        self.planes = ControlPlanes(
            split_control_urls(control_url),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10.0, read=40.0),
            transport=transport,
        )
        self._report = report

    @property
    def current_url(self) -> str:
        """The control plane the next call goes to first."""
        return self.planes.current

    def _headers(self) -> dict[str, str]:
        return report_headers(self._report()) if self._report is not None else {}

    async def aclose(self) -> None:
        await self.planes.aclose()

    async def snapshot(self, after: int, wait: float) -> dict[str, Any]:
        params = {"after": after, "wait": wait}
        response = await self.planes.request(
            "GET", "/v1/edge/snapshot", params=params, headers=self._headers()
        )
        response.raise_for_status()
        return msgpack.unpackb(response.content)

    async def wallet(self, op: str, args: dict[str, Any]) -> Any:
        response = await self.planes.request(
            "POST",
            f"/v1/edge/wallet/{op}",
            content=msgpack.packb(args),
            headers={"Content-Type": MSGPACK},
        )
        response.raise_for_status()
        return msgpack.unpackb(response.content)["result"]

    async def event(self, task: dict[str, Any]) -> int:
        """A task's status into the control plane's webhook outbox: how many endpoints it is
        queued for. Raises unless stored."""
        return (await self._report_to("/v1/edge/events", {"task": task}))["queued"]

    async def ship_usage(self, records: list[dict[str, Any]]) -> None:
        """Raises unless the control plane stored the batch: the spool then keeps it."""
        await self._report_to("/v1/edge/usage", records)

    async def _report_to(self, path: str, body: Any) -> Any:
        """POST `body` as msgpack, with this edge's report headers; the answer, unpacked.
        Raises unless the control plane answered 2xx."""
        headers = {"Content-Type": MSGPACK} | self._headers()
        response = await self.planes.request(
            "POST", path, content=msgpack.packb(body), headers=headers
        )
        response.raise_for_status()
        return msgpack.unpackb(response.content)


async def poll_snapshots(
    client: ControlClient,
    store: PolicyStore,
    wait: float = 20.0,
    saved: SnapshotFile | None = None,
) -> None:
    """Keep the store current: a change shows up as soon as the long poll returns.

    Each answer confirms what the store holds (its age for `PolicyStore.current` starts over)
    and, with `saved`, is kept on disk when its version is new (or the file's stamp is old).
    The first call asks from the store's version without waiting: an edge that restored its
    snapshot from disk gets the control plane's current one at once, which replaces it."""
    backoff = 0.2
    answered = False
    while True:
        try:
            data = await client.snapshot(store.snapshot.version, wait if answered else 0.0)
            snapshot = Snapshot.from_wire(data)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "policy snapshot fetch failed (%s); serving on version %s",
                type(exc).__name__,
                store.snapshot.version,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
            continue
        backoff = 0.2
        answered = True
        store.replace(snapshot)
        if not store.holds(snapshot):
            continue  # an older version than the store's: nothing confirmed, nothing to keep
        store.confirm()
        if saved is not None:
            saved.control_url = client.current_url  # the one that answered
            await saved.keep(data, snapshot, store.confirmed_at)


async def retried[T](call: Callable[[], Awaitable[T]], attempts: int) -> T:
    """`call` until it answers, at most `attempts` times, 0.2 s apart and doubling; the last
    failure raises."""
    delay = 0.2
    for attempt in range(attempts):
        try:
            return await call()
        except (httpx.HTTPError, ValueError):
            if attempt + 1 >= attempts:
                raise
            await asyncio.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


class RemoteWallet:
    """The control plane's credits ledger, for an edge apart (see control/api/walletapi.py).
    Idempotent steps are retried briefly; a reservation is asked once (of each control plane of
    the list at most, failing over: proxy/control_urls.py says why that is safe) and fails
    closed."""

    def __init__(self, client: ControlClient, attempts: int = 3) -> None:
        self._client = client
        self._attempts = attempts

    async def call(self, op: str, args: dict[str, Any], *, retry: bool = True) -> Any:
        return await retried(lambda: self._client.wallet(op, args), self._attempts if retry else 1)

    async def reserve(self, hold: Hold) -> Refusal | None:
        result = await self.call("reserve", dataclasses.asdict(hold), retry=False)
        return None if result is None else Refusal(*result)

    # Asked once: the create's answer waits on them, and neither is lost if the control plane is
    # away (the create's usage record assigns its hold; recovery releases an unassigned one).
    async def assign(self, request_id: str, task_id: str) -> None:
        await self.call("assign", {"request_id": request_id, "task_id": task_id}, retry=False)

    async def release(self, request_id: str) -> None:
        await self.call("release", {"request_id": request_id}, retry=False)

    async def settle(self, task_id: str, status: str, completion_tokens: int | None) -> int | None:
        args = {"task_id": task_id, "status": status, "completion_tokens": completion_tokens}
        return await self.call("settle", args)

    async def owner(self, task_id: str) -> str | None:
        return await self.call("owner", {"task_id": task_id})

    async def org_tasks(self, org_id: str, since: float, limit: int = 500) -> list[str]:
        return await self.call("org_tasks", {"org_id": org_id, "since": since, "limit": limit})

    async def unsettled_tasks(self, limit: int = 1000) -> list[str]:
        return await self.call("unsettled_tasks", {"limit": limit})

    async def video_deleted(self, task_id: str) -> None:
        await self.call("video_deleted", {"task_id": task_id})

    async def idempotency_claim(self, org_id: str, key: str, digest: str, request_id: str) -> Claim:
        args = {"org_id": org_id, "key": key, "digest": digest, "request_id": request_id}
        outcome, status, body = await self.call("idempotency_claim", args, retry=False)
        return Claim(outcome, status, body)

    async def idempotency_finish(
        self, org_id: str, key: str, request_id: str, status: int, body: bytes
    ) -> None:
        args = {"org_id": org_id, "key": key, "request_id": request_id}
        await self.call("idempotency_finish", args | {"status": status, "body": body})

    async def idempotency_release(self, org_id: str, key: str, request_id: str) -> None:
        args = {"org_id": org_id, "key": key, "request_id": request_id}
        await self.call("idempotency_release", args)


class RemoteEvents:
    """The control plane's webhook outbox, for an edge apart: a task's status, durable there
    before this returns (retried briefly; the outbox keeps one event per status)."""

    def __init__(self, client: ControlClient, attempts: int = 3) -> None:
        self._client = client
        self._attempts = attempts

    async def task_status(self, task: dict[str, Any]) -> int:
        return await retried(lambda: self._client.event(task), self._attempts)
