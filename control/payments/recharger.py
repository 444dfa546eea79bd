"""The auto-recharge worker: each pending recharge (made by the low-balance crossing,
control/payments/lowbalance.py) becomes one off-session PaymentIntent on the org's saved card.

Once: the PaymentIntent is created under the recharge's id as Stripe's idempotency key, so a
retry after a crash or a network error is the same payment. A decline ends it (`failed`, one
event to the org); Stripe unreachable is tried again a few times, spaced, then it fails too.
Its answer grants the credits at once (purchases.grant, which the later `payment_intent.
succeeded` event finds done)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from control.payments import purchases, recharges
from control.payments.purchases import Paid
from control.payments.stripeapi import Declined, StripeApi, Unavailable
from control.store import db as dbm
from control.store.database import Row
from control.store.outbox import Outbox
from control.store.state import ControlState

log = logging.getLogger(__name__)

ATTEMPTS = 4  # Stripe unreachable this many times: the recharge fails
RETRY_SECONDS = 30.0  # times the attempts so far, between tries
SENDING_STALE_SECONDS = 120.0  # a recharge `sending` this long was cut off by a crash: resumed
MAX_WAIT = 60.0


# A recharge due now (arguments: now, RETRY_SECONDS, now - SENDING_STALE_SECONDS): pending and
# past its retry wait, or left `sending` by a control plane that stopped mid-charge.
_DUE = (
    "((status='pending' AND updated_at <= ? - ? * attempts) OR "
    "(status='sending' AND updated_at <= ?))"
)


class Recharger:
    def __init__(
        self,
        state: ControlState,
        stripe: StripeApi,
        outbox: Outbox,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.stripe = stripe
        self.outbox = outbox
        self.clock = clock
        self._wakeup: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._runner is None:
            self._wakeup = asyncio.Event()
            self._runner = asyncio.create_task(self._run(), name="auto-recharge")

    def wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        self._wakeup = None

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            self._wakeup.clear()
            try:
                await self.run_once()
            except Exception:
                log.exception("auto-recharge round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), MAX_WAIT)

    async def run_once(self) -> int:
        """Charges every recharge due; returns how many it tried."""
        now = self.clock()
        due = await dbm.fetch_all(
            self.state.db,
            f"SELECT id FROM payments WHERE kind='recharge' AND {_DUE} ORDER BY created_at",
            now,
            RETRY_SECONDS,
            now - SENDING_STALE_SECONDS,
        )
        for row in due:
            await self._charge(row["id"])
        return len(due)

    async def _charge(self, payment_id: str) -> None:
        now = self.clock()
        async with self.state.transaction() as tx:
            # Claimed only while still due: of two control planes that both found it due, the
            # first makes it `sending` (updated now) and the second's claim changes nothing.
            claimed = await tx.execute(
                "UPDATE payments SET status='sending', attempts=attempts+1, updated_at=? "
                f"WHERE id=? AND {_DUE}",
                (now, payment_id, now, RETRY_SECONDS, now - SENDING_STALE_SECONDS),
            )
            payment = await dbm.fetch_one(tx, "SELECT * FROM payments WHERE id=?", payment_id)
            account = await dbm.fetch_one(
                tx, "SELECT * FROM billing_accounts WHERE org_id=?", payment and payment["org_id"]
            )
        if claimed.rowcount == 0 or payment is None:
            return
        try:
            method = await self._card(account)
            if account is None or not account["customer_id"] or method is None:
                await self._fail(payment_id, "no_saved_card")
                return
            intent = await self.stripe.charge_saved_card(
                {
                    "amount": payment["amount"],
                    "currency": payment["currency"],
                    "customer": account["customer_id"],
                    "payment_method": method,
                    "off_session": True,
                    "confirm": True,
                    "description": f"NextAPI auto-recharge {payment_id}",
                    "metadata": {
                        "org_id": payment["org_id"],
                        "pack": payment["pack_id"],
                        "payment_id": payment_id,
                    },
                },
                idempotency_key=payment_id,
            )
        except Declined as declined:
            await self._fail(payment_id, declined.code)
            return
        except Unavailable as unavailable:
            await self._later(payment_id, payment["attempts"], str(unavailable))
            return
        if intent.get("status") != "succeeded":
            await self._fail(payment_id, f"payment_{intent.get('status')}")
            return
        paid = Paid(
            payment_id=payment_id,
            amount=int(intent.get("amount_received") or intent.get("amount") or 0),
            currency=str(intent.get("currency") or ""),
            payment_intent=str(intent["id"]),
            org_id=payment["org_id"],
        )
        async with self.state.transaction() as tx:
            outcome = await purchases.grant(self.state, tx, paid, self.clock())
        log.info("auto-recharge %s of org %s: %s", payment_id, payment["org_id"], outcome)

    async def _card(self, account: Row | None) -> str | None:
        """The saved card: known, or read once from the checkout's payment intent that kept it."""
        if account is None:
            return None
        if account["payment_method"]:
            return account["payment_method"]
        intent = account["card_payment_intent"]
        if not intent:
            return None
        method = await self.stripe.payment_method_of(intent)
        if method is not None:
            async with self.state.transaction() as tx:
                await tx.execute(
                    "UPDATE billing_accounts SET payment_method=? WHERE org_id=?",
                    (method, account["org_id"]),
                )
        return method

    async def _fail(self, payment_id: str, code: str) -> None:
        async with self.state.transaction() as tx:
            await recharges.failed(self.state, tx, payment_id, code, self.clock(), self.outbox)
        self.outbox.wake()

    async def _later(self, payment_id: str, attempts: int, why: str) -> None:
        if attempts >= ATTEMPTS:
            await self._fail(payment_id, "stripe_unavailable")
            return
        log.warning("auto-recharge %s: %s; trying again later", payment_id, why)
        async with self.state.transaction() as tx:
            await tx.execute(
                "UPDATE payments SET status='pending', error=?, updated_at=? "
                "WHERE id=? AND status='sending'",
                (why, self.clock(), payment_id),
            )
