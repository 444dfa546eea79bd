"""The calls the control plane makes to Stripe, through Stripe's own client (async, over httpx):
customers, Checkout Sessions, off-session PaymentIntents for auto-recharge. Configured from the
environment: `NEXTAPI_STRIPE_SECRET_KEY`, and `NEXTAPI_STRIPE_API_BASE` to point the client
elsewhere (the Stripe simulator). Without a key nothing is sent and callers get a 503."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import stripe

from control.http import ApiError

log = logging.getLogger(__name__)
# Stripe's client logs every request at INFO; its retries and refusals reach us as exceptions,
# which are logged here, once, in our words.
logging.getLogger("stripe").setLevel(logging.WARNING)

SECRET_KEY_ENV = "NEXTAPI_STRIPE_SECRET_KEY"
API_BASE_ENV = "NEXTAPI_STRIPE_API_BASE"
TIMEOUT_SECONDS = 20.0


class Declined(Exception):
    """The card was declined (or needs the payer): the payment is over, not to be retried."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Unavailable(Exception):
    """Stripe could not be asked now (network, 5xx, rate limit): the same call may be retried
    under its idempotency key."""


STRIPE_CHECKOUT = "https://checkout.stripe.com"  # where Stripe's own payment pages are


@dataclass(frozen=True, slots=True)
class StripeApi:
    client: stripe.StripeClient | None
    api_base: str = ""  # NEXTAPI_STRIPE_API_BASE, when the client is pointed elsewhere

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> StripeApi:
        key = environ.get(SECRET_KEY_ENV, "").strip()
        if not key:
            return cls(None)
        base = environ.get(API_BASE_ENV, "").strip()
        client = stripe.StripeClient(
            key,
            base_addresses={"api": base} if base else None,
            http_client=stripe.HTTPXClient(timeout=TIMEOUT_SECONDS),
            max_network_retries=2,
        )
        return cls(client, base)

    @property
    def configured(self) -> bool:
        return self.client is not None

    def checkout_origins(self) -> set[str]:
        """The origins a checkout's payment page may be on: Stripe's, and the API base's when
        the client is pointed elsewhere (the Stripe simulator serves its pages there); none
        when payments are not set up."""
        if self.client is None:
            return set()
        if not self.api_base:
            return {STRIPE_CHECKOUT}
        parts = urlsplit(self.api_base)
        return {STRIPE_CHECKOUT, f"{parts.scheme}://{parts.netloc}"}

    def _client(self) -> stripe.StripeClient:
        if self.client is None:
            raise ApiError(
                503,
                "NotConfigured",
                f"Payments are not set up: {SECRET_KEY_ENV} (Stripe's secret key) is not set.",
            )
        return self.client

    # Each call answers Stripe's object as a plain dict (the client's objects are not dicts).

    async def create_customer(self, org_id: str, name: str, email: str | None) -> str:
        params: dict[str, Any] = {"name": name, "metadata": {"org_id": org_id}}
        if email:
            params["email"] = email
        customer = await self._call(
            self._client().v1.customers.create_async, params, f"customer-{org_id}"
        )
        return str(customer["id"])

    async def create_checkout(self, params: dict[str, Any], idempotency_key: str) -> Any:
        return await self._call(
            self._client().v1.checkout.sessions.create_async, params, idempotency_key
        )

    async def charge_saved_card(self, params: dict[str, Any], idempotency_key: str) -> Any:
        """An off-session PaymentIntent, confirmed at once; Declined if the card says no."""
        return await self._call(
            self._client().v1.payment_intents.create_async, params, idempotency_key
        )

    async def refund(self, params: dict[str, Any], idempotency_key: str) -> Any:
        return await self._call(self._client().v1.refunds.create_async, params, idempotency_key)

    async def payment_method_of(self, payment_intent: str) -> str | None:
        intent = await self._call_read(
            self._client().v1.payment_intents.retrieve_async, payment_intent
        )
        method = intent.get("payment_method")
        return method if isinstance(method, str) and method else None

    async def _call(self, create: Any, params: dict[str, Any], idempotency_key: str) -> Any:
        try:
            made = await create(params=params, options={"idempotency_key": idempotency_key})
            return made.to_dict()
        except stripe.CardError as exc:
            raise Declined(exc.code or "card_declined", exc.user_message or str(exc)) from None
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise Unavailable(type(exc).__name__) from None
        except stripe.StripeError as exc:
            if exc.http_status is not None and exc.http_status >= 500:
                raise Unavailable(f"Stripe answered {exc.http_status}") from None
            # Our request was refused (a bad parameter, a key without the permission): the
            # message is Stripe's, never the key.
            log.warning("Stripe refused a call: %s %s", type(exc).__name__, exc.user_message)
            raise ApiError(
                502, "PaymentProviderError", f"Stripe refused the call: {exc.user_message}"
            ) from None

    async def _call_read(self, retrieve: Any, object_id: str) -> Any:
        try:
            return (await retrieve(object_id)).to_dict()
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise Unavailable(type(exc).__name__) from None
        except stripe.StripeError as exc:
            raise Unavailable(f"Stripe answered {exc.http_status}: {exc.user_message}") from None
