"""The control plane's own calls to the upstream, with NextAPI's upstream key: cancelling a
closed org's tasks (control/jobs/cancel.py) and listing the account's recent tasks, to find
those whose creates the edge never answered (control/jobs/orphans.py)."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from proxy.core.seedance.routes import TASKS_PATH

log = logging.getLogger(__name__)


# Says which calls are the control plane's own (the upstream's logs; the tests' simulator log).
USER_AGENT = "nextapi-control"


class UpstreamUnavailable(Exception):
    """The upstream did not answer, or not with what was asked for."""


class UpstreamTasks:
    def __init__(self, origin: str, api_key: str, *, timeout: float = 15.0) -> None:
        self.origin = origin.rstrip("/")
        self._client = httpx.AsyncClient(
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT},
        )

    def __repr__(self) -> str:  # never the key
        return f"UpstreamTasks({self.origin!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def cancel(self, task_id: str) -> bool:
        """True once the upstream took the cancellation (or no longer has the task)."""
        try:
            answer = await self._client.delete(f"{self.origin}{TASKS_PATH}/{task_id}")
        except httpx.HTTPError as exc:
            log.warning("task %s: cancellation not sent: %s", task_id, type(exc).__name__)
            return False
        return answer.status_code in (200, 204, 404)

    async def list_page(self, page_num: int, page_size: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the account's tasks, newest first (the upstream keeps 7 days), and how
        many there are in all. Raises UpstreamUnavailable."""
        query = {"page_num": page_num, "page_size": page_size}
        try:
            answer = await self._client.get(f"{self.origin}{TASKS_PATH}", params=query)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(type(exc).__name__) from None
        if answer.status_code != 200:
            raise UpstreamUnavailable(f"HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            raise UpstreamUnavailable("not JSON") from None
        items = body.get("items") if isinstance(body, dict) else None
        total = body.get("total") if isinstance(body, dict) else None
        if not isinstance(items, list) or not isinstance(total, int):
            raise UpstreamUnavailable("not a task list")
        return [item for item in items if isinstance(item, dict)], total
