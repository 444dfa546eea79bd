"""The webhook delivery worker: sends the outbox (`webhook_events`) to the endpoints, signed after
the Standard Webhooks scheme and retried on its schedule.

An attempt: a disabled (or deleted) endpoint fails the event without a request; the URL must be
http(s) and every address its host resolves to public (unless private addresses are allowed),
and the request goes to those very addresses (no second lookup a rebinding DNS could answer
differently); the outcome (an attempt row, the event, the endpoint's health) is written in one
transaction. 2xx delivers; 410 Gone disables the endpoint; anything else is retried until the
schedule runs out, or the endpoint has been failing for five days (then it is disabled).
Delivery is at least once: receivers deduplicate on `webhook-id`, stable across retries.

Several control planes on one database share the outbox: an event is leased to the one that
claims it (`leased_until`; rows another is claiming are skipped: FOR UPDATE SKIP LOCKED on
PostgreSQL), so each attempt is made once; should that control plane die mid-attempt, the event
falls due again when the lease runs out, for any of them. On SQLite, where one process is the
only control plane, the leases a dead one left are released when the worker starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import ssl
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from control.jobs.webhook_addresses import (
    ADDRESS_REFUSED,
    Refused,
    Resolver,
    allowed_addresses,
    destination,
    system_resolver,
)
from control.store import db as dbm
from control.store.database import Queries, Row
from control.store.state import ControlState
from proxy.core.webhook_signatures import signature_header

log = logging.getLogger(__name__)

# Seconds to wait before attempt 1..8 (Standard Webhooks' retry schedule).
SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
FAILING_LIMIT = 5 * 86400  # an endpoint failing this long is disabled
MAX_RETRY_AFTER = 86400  # a Retry-After longer than a day is taken as a day
ACTOR = "system:webhooks"
USER_AGENT = "NextAPI-Webhooks/1"
STOP_GRACE = 2.0  # seconds `stop` lets deliveries under way finish before cancelling them
MAX_WAIT = 1.0  # the loop looks at the outbox at least this often
MIN_WAIT = 0.01
LEASE_MARGIN = 30.0  # seconds an attempt's lease outlasts its request's timeout


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds the endpoint asked us to wait: integer seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class Deliverer:
    def __init__(
        self,
        state: ControlState,
        *,
        clock: Callable[[], float] = time.time,
        allow_private: bool | None = None,
        timeout: float = 15.0,
        concurrency: int = 8,
        jitter: float = 0.1,
        resolver: Resolver | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        if allow_private is None:
            allow_private = os.environ.get("NEXTAPI_WEBHOOK_ALLOW_PRIVATE") == "1"
        self.allow_private = allow_private
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self.jitter = jitter
        self.resolver: Resolver = resolver or system_resolver
        self._inflight: set[str] = set()  # events being sent right now
        self._again: set[str] = set()  # in-flight events redelivered meanwhile
        self._tasks: set[asyncio.Task[int]] = set()
        self._semaphore: asyncio.Semaphore | None = None
        self._ssl: ssl.SSLContext | None = None
        self._wakeup: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None

    # --- the background loop ----------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None and not self._runner.done():
            return
        if self.state.db.dialect.one_process:
            await self._release_leases()
        self._wakeup = asyncio.Event()
        self._runner = asyncio.create_task(self._run(), name="webhook-delivery")

    async def _release_leases(self) -> None:
        """The leases of attempts a process before this one left when it died: due at once."""
        async with self.state.transaction() as tx:
            await tx.execute(
                "UPDATE webhook_events SET leased_until=NULL WHERE leased_until IS NOT NULL"
            )

    def wake(self) -> None:
        """Look at the outbox now (call on the loop, after an enqueue); a no-op when stopped."""
        if self._wakeup is not None:
            self._wakeup.set()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._wakeup = None

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            self._wakeup.clear()  # before looking, so that a wake-up meanwhile is not lost
            wait = MAX_WAIT
            try:
                free = self.concurrency - len(self._inflight)
                if free > 0:
                    for event_id, lease in await self._claim(free):
                        self._spawn(event_id, lease)
                wait = await self._until_due()
            except Exception:
                log.exception("webhook delivery loop")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), wait)

    async def _until_due(self) -> float:
        row = await dbm.fetch_one(
            self.state.db,
            "SELECT MIN(next_attempt_at) AS due FROM webhook_events WHERE status='pending'",
        )
        if row is None or row["due"] is None or self._inflight:
            # With deliveries under way, their completion wakes us (more may be due then).
            return MAX_WAIT
        return min(max(row["due"] - self.clock(), MIN_WAIT), MAX_WAIT)

    def _spawn(self, event_id: str, lease: float) -> asyncio.Task[int]:
        task = asyncio.create_task(self._attempt(event_id, lease), name=f"webhook {event_id}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[int]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery failed", exc_info=task.exception())
        self.wake()

    # --- the outbox ---------------------------------------------------------------------------

    async def _claim(self, limit: int) -> list[tuple[str, float]]:
        """Up to `limit` due events nobody is sending, leased to this control plane: each with
        its lease's end, by which the attempt knows the event is still its own."""
        now = self.clock()
        lease = now + self.timeout + LEASE_MARGIN
        async with self.state.transaction() as tx:
            rows = await tx.fetch_all(
                "UPDATE webhook_events SET leased_until=? WHERE id IN ("
                "SELECT id FROM webhook_events WHERE status='pending' AND next_attempt_at <= ? "
                "AND (leased_until IS NULL OR leased_until <= ?) "
                f"ORDER BY next_attempt_at, id LIMIT ?{tx.dialect.skip_locked}) "
                "RETURNING id, leased_until",
                lease,
                now,
                now,
                limit,
            )
        claimed = [(row["id"], row["leased_until"]) for row in rows]
        self._inflight.update(event_id for event_id, _ in claimed)
        return claimed

    async def run_once(self) -> int:
        """Deliver every event due now; returns how many attempts were made."""
        made = 0
        while True:
            # No more at once than are sent at once: a lease runs while its event waits.
            batch = await self._claim(self.concurrency)
            if not batch:
                return made
            results = await asyncio.gather(*(self._spawn(*claimed) for claimed in batch))
            made += sum(results)

    async def redeliver(self, event_id: str) -> bool:
        """Make an event (whatever its status) pending and due now; its attempts are kept."""
        now = self.clock()
        async with self.state.transaction() as tx:
            if event_id in self._inflight:
                # Sent again once the attempt under way ends (its outcome would overwrite a
                # change made now, and made due now it would be claimed beside it).
                found = await tx.fetch_one("SELECT 1 FROM webhook_events WHERE id=?", event_id)
                if found:
                    self._again.add(event_id)
                return found is not None
            cursor = await tx.execute(
                "UPDATE webhook_events SET status='pending', next_attempt_at=?, updated_at=? "
                "WHERE id=?",
                (now, now, event_id),
            )
            found = cursor.rowcount > 0
        if found:
            self.wake()
        return found

    # --- one attempt ----------------------------------------------------------------------------

    async def _attempt(self, event_id: str, lease: float) -> int:
        """One attempt of a claimed event; 1 if a request was attempted (or refused), else 0."""
        try:
            if self._semaphore is None:
                self._semaphore = asyncio.Semaphore(self.concurrency)
            async with self._semaphore:
                return await self._deliver(event_id, lease)
        finally:
            self._inflight.discard(event_id)
            if event_id in self._again:  # redelivered after the outcome was written
                self._again.discard(event_id)
                await self.redeliver(event_id)

    async def _deliver(self, event_id: str, lease: float) -> int:
        event = await dbm.fetch_one(
            self.state.db,
            "SELECT e.id, e.webhook_id, e.payload, e.status AS event_status, e.attempts, "
            "e.leased_until, "
            "w.url, w.secret, w.previous_secret, w.previous_valid_until, w.status "
            "FROM webhook_events e LEFT JOIN webhooks w ON w.id = e.webhook_id WHERE e.id=?",
            event_id,
        )
        if event is None or event["event_status"] != "pending":
            if event is not None and event["leased_until"] == lease:  # ours: given back
                async with self.state.transaction() as tx:
                    await tx.execute(
                        "UPDATE webhook_events SET leased_until=NULL WHERE id=? AND leased_until=?",
                        (event_id, lease),
                    )
            return 0
        if event["leased_until"] != lease:
            return 0  # no longer ours: its lease ran out and another took it
        if event["status"] != "enabled":  # disabled, deleted (or gone)
            async with self.state.transaction() as tx:
                await self._set_event(tx, event_id, "failed", event["attempts"], None)
            return 0
        payload = event["payload"]
        body = payload.encode() if isinstance(payload, str) else bytes(payload)
        started_at, started = self.clock(), time.monotonic()
        status: int | None = None
        error: str | None = None
        wait: float | None = None
        try:
            response = await self._post(event, body, int(started_at))
            status = response.status_code
            if not 200 <= status < 300:
                wait = retry_after(response.headers.get("retry-after"), self.clock())
        except Refused as refused:
            error = str(refused)
        except Exception as exc:  # timeouts, refused connections, failed resolution (gaierror)
            error = type(exc).__name__
        latency_ms = round((time.monotonic() - started) * 1000, 1)
        await self._record(event, started_at, status, latency_ms, error, wait)
        return 1

    async def _post(self, event: Row, body: bytes, timestamp: int) -> httpx.Response:
        url, host, port = destination(event["url"])
        addresses = await allowed_addresses(
            host, port, self.resolver, allow_private=self.allow_private
        )
        secrets = [event["secret"]]
        grace = event["previous_valid_until"]
        if event["previous_secret"] and grace is not None and grace > self.clock():
            secrets.append(event["previous_secret"])
        headers = {
            "Host": url.netloc.decode("ascii"),
            "webhook-id": event["id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, event["id"], timestamp, body),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        # A client per attempt: connections are pinned to resolved addresses, and a pooled
        # connection to one address must not carry another host's request (TLS name, vhost).
        async with httpx.AsyncClient(
            verify=self._ssl, trust_env=False, follow_redirects=False, timeout=self.timeout
        ) as client:
            for index, address in enumerate(addresses):
                try:
                    return await client.post(
                        url.copy_with(host=address),
                        content=body,
                        headers=headers,
                        extensions={"sni_hostname": host},
                    )
                except httpx.ConnectError:
                    if index == len(addresses) - 1:
                        raise
        raise Refused(ADDRESS_REFUSED)  # not reached: `addresses` is never empty

    async def _record(
        self,
        event: Row,
        attempted_at: float,
        status: int | None,
        latency_ms: float,
        error: str | None,
        wait: float | None,
    ) -> None:
        event_id, webhook_id = event["id"], event["webhook_id"]
        now = self.clock()
        async with self.state.transaction() as tx:
            await tx.execute(
                "INSERT INTO webhook_attempts (event_id, webhook_id, attempted_at, status, "
                "latency_ms, error) VALUES (?, ?, ?, ?, ?, ?)",
                (event_id, webhook_id, attempted_at, status, latency_ms, error),
            )
            attempts, due = event["attempts"], None
            if status is not None and 200 <= status < 300:
                outcome = "delivered"
                await tx.execute("UPDATE webhooks SET failing_since=NULL WHERE id=?", (webhook_id,))
            elif status == 410:
                attempts, outcome = attempts + 1, "failed"
                await self._disable(tx, webhook_id, "410 Gone", {"event_id": event_id})
            else:
                attempts, outcome = attempts + 1, "failed"
                row = await tx.fetch_one(
                    "UPDATE webhooks SET failing_since=COALESCE(failing_since, ?) WHERE id=? "
                    "RETURNING failing_since",
                    now,
                    webhook_id,
                )
                since = row[0] if row is not None else now
                detail = {"event_id": event_id, "failing_since": since}
                gone = now - since >= FAILING_LIMIT and await self._disable(
                    tx, webhook_id, "failing for 5 days", detail
                )
                if not gone and attempts < len(SCHEDULE):
                    jitter = 1 + random.uniform(-self.jitter, self.jitter)
                    outcome, due = "pending", now + max(SCHEDULE[attempts] * jitter, wait or 0.0)
            await self._set_event(tx, event_id, outcome, attempts, due)

    async def _set_event(
        self,
        tx: Queries,
        event_id: str,
        status: str,
        attempts: int,
        next_attempt_at: float | None,
    ) -> None:
        now = self.clock()
        if event_id in self._again:
            # Redelivered while this attempt was under way: it goes out once more, at once.
            self._again.discard(event_id)
            status, next_attempt_at = "pending", now
        await tx.execute(
            "UPDATE webhook_events SET status=?, attempts=?, next_attempt_at=?, updated_at=?, "
            "leased_until=NULL WHERE id=?",
            (status, attempts, next_attempt_at, now, event_id),
        )

    async def _disable(
        self, tx: Queries, webhook_id: str, reason: str, detail: dict[str, Any]
    ) -> bool:
        cursor = await tx.execute(
            "UPDATE webhooks SET status='disabled', disabled_reason=?, updated_at=? "
            "WHERE id=? AND status='enabled'",
            (reason, self.clock(), webhook_id),
        )
        if cursor.rowcount <= 0:
            return False
        await self.state.audit(
            tx, ACTOR, "webhook.disable", webhook_id, {"reason": reason, **detail}
        )
        return True
