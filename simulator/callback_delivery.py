"""Callback delivery: a ticker posts the task object to `callback_url` on every status change.

Every status a task passed through is posted once, in order (a task that went from queued to
succeeded between two ticks still gets its `running` post), each as the task object was when
it entered that status. Posts for one task go out one after another; succeeded/failed posts are
retried up to 3 times (4 attempts) when the receiver does not answer 2xx within the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from simulator.state import SimState
from simulator.tasks import FINAL_STATUSES

log = logging.getLogger(__name__)

TICK_SECONDS = 0.05
RETRIES = 3


class CallbackDispatcher:
    def __init__(self, state: SimState, interval: float = TICK_SECONDS) -> None:
        self.state = state
        self.interval = interval
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None

    async def run(self) -> None:
        """Tick until cancelled; a failing tick or delivery never stops the loop."""
        async with httpx.AsyncClient(trust_env=False) as client:
            self._client = client
            try:
                while True:
                    try:
                        self.tick()
                    except Exception:
                        log.exception("callback tick failed")
                    await asyncio.sleep(self.interval)
            finally:
                chains = list(self._chains.values())
                for chain in chains:
                    chain.cancel()
                await asyncio.gather(*chains, return_exceptions=True)
                self._client = None

    def tick(self) -> None:
        now = self.state.clock()
        for task in list(self.state.tasks.values()):
            if not task.callback_url:
                continue
            steps = task.steps_until(now)
            for status, since in steps[task.posted :]:
                self._enqueue(task.id, task.callback_url, status, task.render(status, since))
            task.posted = len(steps)

    def _enqueue(self, task_id: str, url: str, status: str, payload: dict) -> None:
        previous = self._chains.get(task_id)
        chain = asyncio.create_task(self._deliver(previous, task_id, url, status, payload))
        self._chains[task_id] = chain
        chain.add_done_callback(lambda done: self._forget(task_id, done))

    def _forget(self, task_id: str, done: asyncio.Task[None]) -> None:
        if self._chains.get(task_id) is done:
            del self._chains[task_id]
        if not done.cancelled() and done.exception() is not None:
            log.error("callback delivery failed", exc_info=done.exception())

    async def _deliver(
        self,
        previous: asyncio.Task[None] | None,
        task_id: str,
        url: str,
        status: str,
        payload: dict,
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        attempts = 1 + RETRIES if status in FINAL_STATUSES else 1
        for attempt in range(1, attempts + 1):
            config = self.state.config
            ok = await self._post(url, payload, config.callback_timeout)
            self.state.callbacks.append(
                {"task_id": task_id, "status": status, "url": url, "ok": ok, "attempt": attempt}
            )
            if ok:
                return
            if attempt < attempts:
                await asyncio.sleep(config.callback_retry_delay)

    async def _post(self, url: str, payload: dict, seconds: float) -> bool:
        client = self._client
        if client is None:
            return False
        with contextlib.suppress(Exception):
            async with asyncio.timeout(seconds):
                response = await client.post(url, json=payload, timeout=seconds)
                await response.aclose()
                return response.is_success
        return False
