"""Product analytics, as the privacy policy allows them: sent to PostHog from the server (the
`posthog` package, its own thread and batches; nothing in the browser, no analytics cookie),
only when NEXTAPI_POSTHOG_KEY is set, under an anonymized id (an HMAC of the Clerk user id with
a secret kept in the database, so PostHog cannot tie it back), with a fixed set of properties
(the call's name, its status, the role): never a body, so never prompt text, key material or
an email. None for a person who opted out, nor for an org that objected to optional
processing (`processing_objection`)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets

from posthog import Posthog

from control.customers.access import Customer
from control.store import db as dbm
from control.store.state import ControlState

log = logging.getLogger(__name__)
KEY_ENV = "NEXTAPI_POSTHOG_KEY"
SALT_KEY = "analytics_salt"  # meta row: the HMAC key of the anonymized ids


class ProductAnalytics:
    def __init__(self, state: ControlState, api_key: str, host: str) -> None:
        self.state = state
        self.client = Posthog(
            api_key, host=host, disable_geoip=True, flush_interval=1.0, max_retries=1, timeout=5
        )
        self.salt: bytes | None = None

    @classmethod
    def from_env(cls, state: ControlState, host: str) -> ProductAnalytics | None:
        api_key = os.environ.get(KEY_ENV, "")
        return cls(state, api_key, host) if api_key else None

    async def anonymous_id(self, clerk_user_id: str) -> str:
        if self.salt is None:
            self.salt = await _salt(self.state)
        return hmac.new(self.salt, clerk_user_id.encode(), hashlib.sha256).hexdigest()[:32]

    async def capture(self, customer: Customer, event: str, status: int) -> None:
        """One product event of the customer's, unless they (or their org) said no."""
        if not await self._allowed(customer):
            return
        distinct_id = await self.anonymous_id(customer.clerk_user_id)
        try:
            self.client.capture(
                event,
                distinct_id=distinct_id,
                properties={
                    "status": status,
                    "role": customer.role,
                    "$process_person_profile": False,
                },
            )
        except Exception:  # analytics never fail a customer's call
            log.warning("product analytics: the event could not be queued", exc_info=True)

    async def _allowed(self, customer: Customer) -> bool:
        row = await dbm.fetch_one(
            self.state.db,
            "SELECT u.analytics_opt_out, o.processing_objection FROM orgs o "
            "LEFT JOIN customer_users u ON u.clerk_user_id=? WHERE o.id=?",
            customer.clerk_user_id,
            customer.org_id,
        )
        return row is not None and not row["analytics_opt_out"] and not row["processing_objection"]

    def close(self) -> None:
        """Sends what is queued (at the control plane's stop)."""
        self.client.shutdown()


async def _salt(state: ControlState) -> bytes:
    async with state.transaction() as tx:
        row = await dbm.fetch_one(tx, "SELECT value FROM meta WHERE key=?", SALT_KEY)
        if row is None:
            value = secrets.token_hex(32)
            await tx.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (SALT_KEY, value))
        else:
            value = row["value"]
    return bytes.fromhex(value)
