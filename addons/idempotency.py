"""`Idempotency-Key` on creates (proxy/core/idempotency.py): a retried create with the same
key and body is answered with the first result, before any concurrency slot or credit is taken;
the same key with another body is a 422; while the first is still running, a 409 the SDKs
retry."""

from __future__ import annotations

import logging

from mitmproxy import http

from addons.ratelimit import settle_pending
from addons.respond import context, refuse
from proxy.context import METADATA_KEY, RequestContext
from proxy.core import idempotency
from proxy.errors import EdgeError, invalid_parameter
from proxy.services import EdgeServices

log = logging.getLogger(__name__)


class Idempotency:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response:
            return
        rctx = context(flow)
        key = flow.request.headers.get(idempotency.HEADER)
        if key is None or rctx.create is None or rctx.identity is None:
            return
        if not idempotency.valid_key(key):
            message = f"The {idempotency.HEADER} header must be 1–255 visible ASCII characters."
            refuse(flow, invalid_parameter(message, idempotency.HEADER))
            return
        wallet = self.services.wallet
        if wallet is None:
            return  # Billing refuses the create: nothing runs twice
        # A create over its key's or org's limits never claims its key (addons/ratelimit.py).
        await settle_pending(flow, self.services)
        if flow.response:
            return
        digest = idempotency.body_hash(rctx.create.body)
        org_id = rctx.identity.org.org_id
        try:
            claim = await wallet.idempotency_claim(org_id, key, digest, rctx.request_id)
        except Exception:
            log.exception("idempotency key lookup failed; refusing the create")
            refuse(flow, EdgeError(503, "ServiceUnavailable", "Billing is not available."))
            return
        if claim.outcome == idempotency.NEW:
            rctx.idempotency_key = key
        elif claim.outcome == idempotency.REPLAY:
            assert claim.status is not None and claim.body is not None
            flow.response = http.Response.make(
                claim.status,
                claim.body,
                {
                    "Content-Type": "application/json",
                    "X-Request-Id": rctx.request_id,
                    "Idempotent-Replayed": "true",
                },
            )
        elif claim.outcome == idempotency.MISMATCH:
            message = f"This {idempotency.HEADER} was used with a different request body."
            refuse(flow, EdgeError(422, "IdempotencyKeyReused", message, idempotency.HEADER))
        else:
            message = f"A create with this {idempotency.HEADER} is still in progress."
            refuse(
                flow,
                EdgeError(409, "IdempotencyKeyInProgress", message, headers={"Retry-After": "1"}),
            )

    async def response(self, flow: http.HTTPFlow) -> None:
        await self._settle(flow)

    async def error(self, flow: http.HTTPFlow) -> None:
        await self._settle(flow)

    async def _settle(self, flow: http.HTTPFlow) -> None:
        rctx = flow.metadata.get(METADATA_KEY)
        if not isinstance(rctx, RequestContext):
            return
        key, rctx.idempotency_key = rctx.idempotency_key, None
        wallet = self.services.wallet
        if key is None or wallet is None or rctx.identity is None:
            return
        org_id = rctx.identity.org.org_id
        try:
            response = flow.response
            if response is not None and response.status_code == 200 and rctx.task_id:
                body = response.raw_content or b""
                await wallet.idempotency_finish(
                    org_id, key, rctx.request_id, response.status_code, body
                )
            else:
                await wallet.idempotency_release(org_id, key, rctx.request_id)
        except Exception:
            # The key stays claimed: a retry waits (409) until the create's hold tells its task.
            log.exception("recording the idempotency key's result failed")
