"""Credits on the life of a create: the most the task can cost (priced from the catalog in the
policy snapshot) is reserved against the balance and every spend limit, with the unit price its
task will be charged at, before anything is relayed (402 otherwise); the hold passes to the task
once the upstream accepts it, or is released at once if the create fails. The charge itself
happens when the task is seen ending (addons/tasks.py, callbacks, the reconciler).

An accepted create is never left unowned: its usage record (on disk before the customer hears
of the task, and shipped until the control plane acknowledges it) names the task, and the
control plane's ingest assigns the hold from it (control/api/usage.py). The call here is the
fast path; when the control plane is away it fails, and the record does it later."""

from __future__ import annotations

import logging

from mitmproxy import http

from addons.respond import context, refuse
from proxy.context import METADATA_KEY, RequestContext
from proxy.core.pricing import quote
from proxy.core.seedance.catalog import fraction_text
from proxy.core.wallet import Hold
from proxy.errors import EdgeError, invalid_parameter
from proxy.failures import is_dependency_failure
from proxy.services import EdgeServices

log = logging.getLogger(__name__)


class Billing:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        rctx = context(flow)
        if rctx.route is None or rctx.route.name != "tasks.create" or rctx.create is None:
            return
        assert rctx.identity is not None and rctx.family is not None
        wallet = self.services.wallet
        if wallet is None:
            # Never relay a create that nobody can bill.
            refuse(flow, EdgeError(503, "ServiceUnavailable", "Billing is not available."))
            return
        create = rctx.create
        try:
            price = quote(self.services.policy.snapshot.catalog, rctx.family, create)
        except KeyError:  # the catalog changed under this request: the next one sees it whole
            refuse(flow, invalid_parameter(f"The model `{create.model}` is not priced.", "model"))
            return
        amount = price.amount
        hold = Hold(
            request_id=rctx.request_id,
            org_id=rctx.identity.org.org_id,
            key_id=rctx.identity.key.key_id,
            amount=amount,
            model=create.model,
            tier=price.service_tier,
            generate_audio=price.audio,
            callback_webhook=rctx.callback_webhook,
            unit_price=fraction_text(price.unit_price),
            resolution=price.resolution,
            video_input=price.video_input,
        )
        try:
            refusal = await wallet.reserve(hold)
        except Exception:
            log.exception("credit reservation failed; refusing the create")
            refuse(flow, EdgeError(503, "ServiceUnavailable", "Billing is not available."))
            return
        if refusal is not None:
            refuse(flow, EdgeError(402, refusal.code, refusal.message))
            return
        rctx.holds_credits = True
        rctx.credits = amount

    async def response(self, flow: http.HTTPFlow) -> None:
        await self._settle(flow)

    async def error(self, flow: http.HTTPFlow) -> None:
        await self._settle(flow)

    async def _settle(self, flow: http.HTTPFlow) -> None:
        rctx = flow.metadata.get(METADATA_KEY)
        if not isinstance(rctx, RequestContext) or not rctx.holds_credits:
            return
        rctx.holds_credits = False
        wallet = self.services.wallet
        assert wallet is not None and rctx.identity is not None
        if rctx.task_id:
            # First: this edge can show the task to its owner even while the ledger is away.
            self.services.watch.remember(rctx.task_id, rctx.identity.org.org_id)
            try:
                await wallet.assign(rctx.request_id, rctx.task_id)
            except Exception as exc:
                _deferred(
                    exc,
                    "task %s: hold %s not assigned yet; its usage record assigns it",
                    rctx.task_id,
                    rctx.request_id,
                )
        else:
            rctx.credits = 0
            try:
                await wallet.release(rctx.request_id)
            except Exception as exc:
                # Held until the control plane's sweep releases it (control/jobs/holds.py).
                _deferred(exc, "hold %s not released yet", rctx.request_id)


def _deferred(exc: Exception, message: str, *args: object) -> None:
    """A ledger call that failed after the answer was decided: the usage record or the hold
    sweep does it later. A dependency away is expected (one line); anything else is a bug."""
    if is_dependency_failure(exc):
        log.warning(message + " (%s)", *args, type(exc).__name__)
    else:
        log.error(message, *args, exc_info=exc)
