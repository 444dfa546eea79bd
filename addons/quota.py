"""Protects the shared upstream account: per-model request caps and concurrency slots.

Every customer's tasks run on NextAPI's one upstream account (at most 120 queued tasks, per-model
RPM), so one noisy customer must not starve the others. A create takes a slot per key, per org,
per model and company-wide, all or none (429 `QuotaExceeded` otherwise); the slots are freed when
the create fails, or when the task is seen ending (a get, a delete, or the reconciler that polls
the upstream for unfinished tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from mitmproxy import ctx, http

from addons.ratelimit import refuse_limited, settle_pending
from addons.respond import context, refuse
from proxy.context import METADATA_KEY, RequestContext
from proxy.core.seedance.routes import TASKS_PATH
from proxy.errors import EdgeError, counters_unavailable
from proxy.limits.concurrency import Refusal, SlotLimit
from proxy.limits.limiter import PER_MINUTE, Window, own_scope
from proxy.limits.resilient import CountersUnavailable
from proxy.options import declare
from proxy.services import EdgeServices
from proxy.tasks.watch import TERMINAL

log = logging.getLogger(__name__)

CREATE_TTL = 300.0  # seconds a create may hold slots before its answer (then they free)
TASK_TTL = 172800 + 3600  # the upstream's longest default task lifetime, plus margin
RETRY_AFTER_SECONDS = "5"


def quota_exceeded(refusal: Refusal) -> EdgeError:
    scope = refusal.counter.split(":", 1)[0]
    return EdgeError(
        429,
        "QuotaExceeded",
        f"Too many unfinished tasks for the {scope}: {refusal.in_use} of {refusal.limit}.",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


class Quota:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services
        self.reconciler: asyncio.Task[None] | None = None

    def load(self, loader) -> None:
        declare(
            loader,
            "nextapi_model_limits",
            "nextapi_upstream_concurrent_tasks",
            "nextapi_reconcile_interval",
        )

    def running(self) -> None:
        self.reconciler = asyncio.create_task(self._reconcile_forever())

    async def done(self) -> None:
        if self.reconciler is not None:
            self.reconciler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reconciler

    # --- the request path --------------------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            # Answered by an earlier addon: the key's and org's windows a create left pending
            # are counted all the same, and a refusal comes first (addons/ratelimit.py).
            await settle_pending(flow, self.services)
            return
        rctx = context(flow)
        if rctx.route is None or rctx.route.name != "tasks.create" or rctx.identity is None:
            return
        try:
            await self._admit(flow, rctx)
        except CountersUnavailable:
            refuse(flow, counters_unavailable())

    async def _admit(self, flow: http.HTTPFlow, rctx: RequestContext) -> None:
        model = rctx.model or ""
        per_minute = self.services.model_limits.get(model, {}).get(PER_MINUTE)
        cap = [Window(f"model:{model}", PER_MINUTE, per_minute)] if per_minute else []
        # With the key's and org's windows, if they were left pending: one round trip.
        decision = await settle_pending(flow, self.services, cap)
        if flow.response:
            return  # the key's or org's windows refused it (or the counters are unavailable)
        if decision is not None and not decision.allowed:
            refuse_limited(flow, decision)  # the model's cap: shared
            return
        slots = self._slot_limits(rctx, model)
        refusal = await self.services.counters.acquire(rctx.request_id, slots, ttl=CREATE_TTL)
        if refusal is not None:
            rctx.limited_by = own_scope(refusal.counter)
            refuse(flow, quota_exceeded(refusal))
            return
        rctx.holds_slots = True

    def _slot_limits(self, rctx: RequestContext, model: str) -> list[SlotLimit]:
        assert rctx.identity is not None
        key, org = rctx.identity.key, rctx.identity.org
        limits = [SlotLimit("upstream", ctx.options.nextapi_upstream_concurrent_tasks)]
        if per_key := key.rate_limit.get("concurrent_tasks"):
            limits.append(SlotLimit(f"key:{key.key_id}", per_key))
        default = self.services.default_limits.get("concurrent_tasks")
        if per_org := org.rate_limit.get("concurrent_tasks") or default:
            limits.append(SlotLimit(f"org:{org.org_id}", per_org))
        if per_model := self.services.model_limits.get(model, {}).get("concurrent_tasks"):
            limits.append(SlotLimit(f"model:{model}", per_model))
        return limits

    async def response(self, flow: http.HTTPFlow) -> None:
        rctx = flow.metadata.get(METADATA_KEY)
        if isinstance(rctx, RequestContext) and rctx.holds_slots:
            await self._settle_create(rctx)

    async def error(self, flow: http.HTTPFlow) -> None:
        # The client left: the create may still have happened upstream (then the task holds
        # its slots) or not (then they are freed now rather than at their ttl).
        rctx = flow.metadata.get(METADATA_KEY)
        if isinstance(rctx, RequestContext) and rctx.holds_slots:
            await self._settle_create(rctx)

    async def _settle_create(self, rctx: RequestContext) -> None:
        rctx.holds_slots = False
        counters = self.services.counters
        if rctx.task_id:
            await counters.bind(rctx.request_id, rctx.task_id, ttl=TASK_TTL)
        else:
            await counters.release(rctx.request_id)

    # --- the reconciler ----------------------------------------------------------------------

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(ctx.options.nextapi_reconcile_interval)
            try:
                await self.reconcile()
            except Exception:
                log.exception("task reconciliation failed; retrying next round")

    async def reconcile(self) -> int:
        """Poll the upstream for every task that holds slots or credits; the task watch frees
        and settles those that ended. Returns how many ended."""
        services = self.services
        if services.upstream is None or not services.upstream_origin:
            return 0
        open_ids = await services.counters.open_tasks()
        if services.wallet is not None:
            open_ids = list(dict.fromkeys([*open_ids, *await services.wallet.unsettled_tasks()]))
        ended = 0
        for task_id in open_ids:
            answer = await services.upstream.send(
                "GET", services.upstream_origin, f"{TASKS_PATH}/{task_id}", [], b""
            )
            if isinstance(answer, EdgeError):
                continue  # upstream trouble: try again next round
            if answer.status == 404:  # gone upstream: it holds nothing there any more
                await services.watch.gone(task_id, "expired")
                ended += 1
                continue
            try:
                task = json.loads(answer.content)
            except ValueError:
                continue
            if answer.status == 200 and isinstance(task, dict):
                if task.get("status") in TERMINAL:
                    ended += 1
                task = await services.present(task, await services.watch.owner(task_id))
                await services.watch.seen(task)
        return ended
