"""Task callbacks on the developer's machine, signed like production (Standard Webhooks).

A create whose `callback_url` is local (loopback, `localhost`) cannot be reached by any remote
target, so the dev proxy takes the field out of the body it forwards and watches the task
itself: it polls the target for the task and posts every status change to the callback URL
(or to `--forward-callbacks-to`, which takes every caught task), signed with the dev secret.
The secret is made once per data dir and kept, so a receiver configured with it keeps working
across restarts (like `stripe listen`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from addons.devmode.settings import is_loopback
from proxy.core.seedance.routes import TASKS_PATH
from proxy.core.webhook_signatures import new_secret, secret_key, sign

log = logging.getLogger("nextapi.dev")

FINAL_STATUSES = ("succeeded", "failed", "expired", "cancelled")
SECRET_FILE = "callback-secret"


def load_secret(dev_dir: Path) -> str:
    """The dev secret of this data dir, made on first use (file mode 0600)."""
    path = dev_dir / SECRET_FILE
    if path.exists():
        secret = path.read_text(encoding="ascii").strip()
        secret_key(secret)  # refuses a damaged file rather than signing with garbage
        return secret
    dev_dir.mkdir(parents=True, exist_ok=True)
    secret = new_secret()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(secret + "\n")
    return secret


def is_local_url(url: str) -> bool:
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
    except ValueError:
        return False
    return is_loopback(host) or host.endswith(".localhost")


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    msg_id = "msg_" + secrets.token_urlsafe(16)
    timestamp = int(time.time() if now is None else now)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


@dataclass(frozen=True)
class Delivery:
    task_id: str
    status: str
    url: str
    http_status: int | None  # None: not delivered (connection error, timeout)


class CallbackRelay:
    """Watches tasks on the target and delivers their status changes, signed."""

    def __init__(
        self,
        secret: str,
        on_delivery: Callable[[Delivery], None],
        *,
        poll_interval: float = 0.2,
        attempts: int = 4,
        timeout: float = 5.0,
    ) -> None:
        self.secret = secret
        self.on_delivery = on_delivery
        self.poll_interval = poll_interval
        self.attempts = attempts
        self.timeout = timeout
        # Never through the proxy itself: the target and the receivers are reached directly.
        self._client = httpx.AsyncClient(trust_env=False, timeout=timeout)
        self._watches: set[asyncio.Task[None]] = set()

    def watch(self, task_id: str, destination: str, base_url: str, authorization: str) -> None:
        task = asyncio.create_task(self._watch(task_id, destination, base_url, authorization))
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)

    async def _watch(self, task_id: str, destination: str, base_url: str, auth: str) -> None:
        url = f"{base_url}{TASKS_PATH}/{urllib.parse.quote(task_id, safe='')}"
        last: str | None = None
        failures = 0
        while True:
            try:
                answer = await self._client.get(url, headers={"authorization": auth})
            except httpx.HTTPError as exc:
                failures += 1
                if failures > 50:
                    log.warning("gave up watching task %s: %s", task_id, exc)
                    return
                await asyncio.sleep(self.poll_interval)
                continue
            if answer.status_code == 404:
                return
            task = _object(answer.content) if answer.is_success else None
            status = task.get("status") if task else None
            if isinstance(status, str) and status != last:
                last = status
                await self._deliver(task_id, status, destination, answer.content)
            if status in FINAL_STATUSES:
                return
            await asyncio.sleep(self.poll_interval)

    async def _deliver(self, task_id: str, status: str, url: str, body: bytes) -> None:
        attempts = self.attempts if status in FINAL_STATUSES else 1
        for attempt in range(1, attempts + 1):
            code: int | None = None
            with contextlib.suppress(httpx.HTTPError):
                answer = await self._client.post(
                    url, content=body, headers=signed_headers(self.secret, body)
                )
                code = answer.status_code
            self.on_delivery(Delivery(task_id, status, url, code))
            if code is not None and 200 <= code < 300:
                return
            if attempt < attempts:
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        for task in list(self._watches):
            task.cancel()
        await asyncio.gather(*self._watches, return_exceptions=True)
        await self._client.aclose()


def _object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
