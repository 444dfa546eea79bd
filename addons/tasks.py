"""Tasks belong to the org that created them; the upstream account is shared by every customer.

A get or delete of another org's task is a 404, indistinguishable from a missing task; a list
is narrowed to the caller's own tasks (the edge never relays an unfiltered list). Ownership is
never guessed: when it cannot be checked (the control plane away and the owner not cached on
this edge), the answer is 503 with `Retry-After`, and nothing is relayed. Every task
status the edge sees on the way back is passed to the task watch (slots, settlement); before a
delete, an unsettled task is settled from the upstream's own record, which the delete removes.
"""

from __future__ import annotations

import json
import logging
import time

import httpx
from mitmproxy import http

from addons.respond import context, refuse
from proxy.context import METADATA_KEY, RequestContext
from proxy.core.seedance.routes import TASKS_PATH
from proxy.core.video_assets import AssetError
from proxy.errors import EdgeError, not_found
from proxy.failures import dependency_unavailable, is_dependency_failure
from proxy.services import EdgeServices

log = logging.getLogger(__name__)
LIST_DAYS = 7  # the upstream lists the last 7 days only
LIST_MAX_IDS = 100  # the newest tasks a list covers: the ids travel in the query string
UNCHECKED = "The task ownership check"


class Tasks:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        rctx = context(flow)
        if rctx.route is None or rctx.identity is None:
            return
        org_id = rctx.identity.org.org_id
        name = rctx.route.name
        if name not in ("tasks.get", "tasks.delete", "tasks.list"):
            return
        try:
            if name == "tasks.list":
                await self._narrow_list(flow, org_id)
                return
            assert rctx.task_id is not None
            owner = await self.services.watch.owner(rctx.task_id)
        except Exception as exc:
            if not is_dependency_failure(exc):
                raise
            log.warning("%s: task ownership unknown (%s); answered 503", name, type(exc).__name__)
            refuse(flow, dependency_unavailable(UNCHECKED))
            return
        if owner != org_id:
            refuse(flow, not_found("The task was not found."))
            return
        if name == "tasks.delete":
            await self._settle_before_delete(rctx.task_id)

    async def _narrow_list(self, flow: http.HTTPFlow, org_id: str) -> None:
        wallet = self.services.wallet
        if wallet is None:  # nothing knows which tasks are the caller's
            refuse(flow, dependency_unavailable(UNCHECKED))
            return
        since = time.time() - LIST_DAYS * 86400
        own = await wallet.org_tasks(org_id, since, LIST_MAX_IDS)
        query = list(flow.request.query.items(multi=True))
        asked = {v for k, v in query if k == "filter.task_ids"}
        ids = [task_id for task_id in own if not asked or task_id in asked]
        if not ids:
            body = json.dumps({"items": [], "total": 0}).encode()
            flow.response = http.Response.make(200, body, {"Content-Type": "application/json"})
            return
        kept = [(k, v) for k, v in query if k != "filter.task_ids"]
        flow.request.query = [*kept, *(("filter.task_ids", task_id) for task_id in ids)]

    async def _settle_before_delete(self, task_id: str) -> None:
        if self.services.watch.settled(task_id):
            return
        task = await self._upstream_task(task_id)
        if task is not None:
            await self.services.watch.seen(task)

    async def _upstream_task(self, task_id: str) -> dict | None:
        """The task as the upstream shows it now, or None (gone, or the upstream unreachable)."""
        upstream, origin = self.services.upstream, self.services.upstream_origin
        if upstream is None or not origin:
            return None
        answer = await upstream.send("GET", origin, f"{TASKS_PATH}/{task_id}", [], b"")
        if isinstance(answer, EdgeError) or answer.status != 200:
            return None
        try:
            task = json.loads(answer.content)
        except ValueError:
            return None
        return task if isinstance(task, dict) else None

    async def response(self, flow: http.HTTPFlow) -> None:
        rctx = flow.metadata.get(METADATA_KEY)
        if not isinstance(rctx, RequestContext) or rctx.route is None or flow.response is None:
            return
        if flow.response.status_code != 200 or rctx.identity is None:
            return
        name = rctx.route.name
        org_id = rctx.identity.org.org_id
        if name == "tasks.get":
            task = _json_object(flow.response.content)
            if task is None:
                return
            shown = await self.services.present(task, org_id)
            try:
                charged = await self.services.watch.seen(shown)
            except Exception as exc:
                if not is_dependency_failure(exc):
                    raise
                # Settled on a later sight (the next get, a callback, the reconciler).
                log.warning("task %s: status not recorded (%s)", rctx.task_id, type(exc).__name__)
                charged = None
            if charged:
                rctx.credits = charged
            if shown is not task:
                flow.response.content = json.dumps(shown, ensure_ascii=False).encode()
        elif name == "tasks.list":
            await self._present_list(flow, org_id)
        elif name == "tasks.delete" and rctx.task_id:
            # A queued task is now cancelled (its record kept); a finished one is gone, and the
            # gateway's copies of its video with it.
            task = await self._upstream_task(rctx.task_id)
            if task is not None:
                await self.services.watch.seen(task)
            else:
                await self.services.watch.gone(rctx.task_id)
            await self._forget_video(rctx.task_id)

    async def _forget_video(self, task_id: str) -> None:
        videos, wallet = self.services.videos, self.services.wallet
        if videos is None:
            return
        try:
            deleted = await videos.forget(task_id)
        except AssetError as exc:  # the retention sweep deletes it later
            log.warning("task %s: video copies not deleted yet: %s", task_id, exc)
            return
        if deleted and wallet is not None:
            try:
                await wallet.video_deleted(task_id)  # the task record says so
            except (httpx.HTTPError, ValueError) as exc:  # the control plane is away
                log.warning("task %s: deleted video not recorded: %s", task_id, exc)

    async def _present_list(self, flow: http.HTTPFlow, org_id: str) -> None:
        assert flow.response is not None
        page = _json_object(flow.response.content)
        items = page.get("items") if page is not None else None
        if page is None or not isinstance(items, list):
            return
        shown = [
            await self.services.present(item, org_id) if isinstance(item, dict) else item
            for item in items
        ]
        if any(a is not b for a, b in zip(shown, items, strict=True)):
            page = {**page, "items": shown}
            flow.response.content = json.dumps(page, ensure_ascii=False).encode()


def _json_object(content: bytes | None) -> dict | None:
    try:
        value = json.loads(content or b"")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
