"""Events as Stripe builds them, signed as Stripe signs them, delivered in order from one queue.

Signature: `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over `"<t>.<payload>"`, keyed
with the `whsec_…` secret's UTF-8 bytes, whole (Stripe's libraries do not decode it), and made
fresh for each attempt. A receiver that does not answer 2xx is retried with doubling pauses.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from simulator.stripe.state import StripeState, new_id, now, snapshot

log = logging.getLogger(__name__)

API_VERSION = "2026-10-28.endive"  # what stripe 16.1.0 calls current; fixed, as an account's is
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def sign(payload: str, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass(slots=True)
class EventRecord:
    id: str
    type: str
    payload: str
    attempts: int = 0
    delivered: bool = False
    last_status: int | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "payload": self.payload,
            "attempts": self.attempts,
            "delivered": self.delivered,
            "last_status": self.last_status,
        }


@dataclass(slots=True)
class DeliveryPolicy:
    attempts: int = 5
    first_backoff: float = 0.1
    timeout: float = 5.0


class Webhooks:
    """Records every event; queues it for the endpoint when one is set and delivery is on."""

    def __init__(self, state: StripeState, policy: DeliveryPolicy) -> None:
        self.state = state
        self.policy = policy
        self.events: list[EventRecord] = []
        self.by_id: dict[str, EventRecord] = {}
        self._queue: asyncio.Queue[tuple[EventRecord, str]] = asyncio.Queue()
        self._client: httpx.AsyncClient | None = None

    def emit(
        self, type_: str, obj: dict[str, Any], request: dict[str, str | None] | None = None
    ) -> EventRecord:
        """A new event carrying a snapshot of `obj` as it is now; `request` names the API call
        that caused it (both null for the checkout page and the test controls)."""
        event = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": now(),
            "data": {"object": snapshot(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": request or {"id": None, "idempotency_key": None},
            "type": type_,
        }
        record = EventRecord(event["id"], type_, json.dumps(event, indent=2))
        self.events.append(record)
        self.by_id[record.id] = record
        url = self.state.webhook_url
        if url and self.state.deliver:
            self._queue.put_nowait((record, url))
        return record

    async def run(self) -> None:
        """Deliver queued events one at a time, in order, until cancelled."""
        async with httpx.AsyncClient(trust_env=False) as client:
            self._client = client
            try:
                while True:
                    record, url = await self._queue.get()
                    try:
                        await self._deliver(record, url)
                    except Exception:
                        log.exception("webhook delivery of %s failed", record.id)
            finally:
                self._client = None

    async def _deliver(self, record: EventRecord, url: str) -> None:
        pause = self.policy.first_backoff
        for attempt in range(1, self.policy.attempts + 1):
            if await self.send_once(record, url):
                return
            if attempt < self.policy.attempts:
                await asyncio.sleep(pause)
                pause *= 2

    async def send_once(self, record: EventRecord, url: str) -> bool:
        """One signed POST of the event's exact payload; True when the receiver answered 2xx."""
        record.attempts += 1
        record.last_status = None
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Stripe-Signature": sign(record.payload, self.state.webhook_secret, int(time.time())),
        }
        client = self._client
        if client is None:
            return False
        with contextlib.suppress(httpx.HTTPError, OSError):
            response = await client.post(
                url, content=record.payload.encode(), headers=headers, timeout=self.policy.timeout
            )
            record.last_status = response.status_code
            if response.is_success:
                record.delivered = True
                return True
        return False
