"""Stripe's HTTP surface under `/v1/`: the Bearer key, form-encoded params, `Idempotency-Key`,
`expand[]`, `Request-Id`, and errors in Stripe's envelope."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.stripe import checkout, payments
from simulator.stripe.errors import StripeError
from simulator.stripe.forms import parse_form
from simulator.stripe.state import IdempotentResult, StripeState, expand, new_id
from simulator.stripe.webhooks import API_VERSION, Webhooks


@dataclass(slots=True)
class Call:
    state: StripeState
    webhooks: Webhooks
    params: dict[str, Any]
    path: dict[str, str]
    base_url: str
    event_request: dict[str, str | None]


Handler = Callable[[Call], dict[str, Any]]


def base_url(state: StripeState, request: Request) -> str:
    """Where the customer's browser reaches the simulator: `--public-url`, else as called."""
    if state.public_url:
        return state.public_url.rstrip("/")
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":  # Stripe takes the key as the Basic user name as well
        try:
            return base64.b64decode(value).decode().partition(":")[0]
        except ValueError:
            return None
    return None


def check_key(state: StripeState, request: Request) -> None:
    key = _presented_key(request)
    if not key:
        raise StripeError(401, "You did not provide an API key. Provide it as a Bearer token.")
    if not hmac.compare_digest(key.encode(), state.api_key.encode()):
        shown = f"{key[:8]}{'*' * 4}{key[-4:]}" if len(key) > 12 else "****"
        raise StripeError(401, f"Invalid API Key provided: {shown}", code="api_key_invalid")


def _replay(state: StripeState, key: str, method: str, path: str, body: str) -> Response | None:
    saved = state.idempotent.get(key)
    if saved is None:
        return None
    if (saved.method, saved.path, saved.body) != (method, path, body):
        raise StripeError(
            400,
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{key}' if you meant to execute a "
            "different request.",
            type_="idempotency_error",
        )
    return Response(
        saved.content,
        status_code=saved.status,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


def endpoint(
    state: StripeState, webhooks: Webhooks, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        request_id = new_id("req")
        raw = (await request.body()).decode("utf-8", "replace")
        key = request.headers.get("idempotency-key") if request.method == "POST" else None
        try:
            check_key(state, request)
            # The same key and body fingerprint: a replay answers what the first call answered.
            fingerprint = hashlib.sha256(raw.encode()).hexdigest()
            if key and (replayed := _replay(state, key, "POST", request.url.path, fingerprint)):
                response = replayed
            else:
                params = parse_form(raw if request.method == "POST" else request.url.query)
                call = Call(
                    state,
                    webhooks,
                    params,
                    dict(request.path_params),
                    base_url(state, request),
                    {"id": request_id, "idempotency_key": key},
                )
                save = bool(key)
                try:
                    obj = handler(call)
                    paths = params.get("expand", [])
                    answer = expand(state, obj, paths if isinstance(paths, list) else [])
                    response = JSONResponse(answer)
                except StripeError as error:
                    response = error.response()
                    # A decline ran (and is kept, as Stripe keeps it); a refused request did
                    # not, and leaves its key free for a corrected retry.
                    save = save and error.status == 402
                if key and save:
                    state.idempotent[key] = IdempotentResult(
                        "POST", request.url.path, fingerprint, response.status_code, response.body
                    )
        except StripeError as error:
            response = error.response()
        response.headers["Request-Id"] = request_id
        response.headers["Stripe-Version"] = API_VERSION
        if key:
            response.headers["Idempotency-Key"] = key
        return response

    return serve


def _retrieve(kind: str, view: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Handler:
    def handler(call: Call) -> dict[str, Any]:
        obj = call.state.get(kind, call.path["id"])
        return view(obj) if view else obj

    return handler


def routes(state: StripeState, webhooks: Webhooks) -> list[Route]:
    def post(path: str, handler: Handler) -> Route:
        return Route(path, endpoint(state, webhooks, handler), methods=["POST"])

    def get(path: str, handler: Handler) -> Route:
        return Route(path, endpoint(state, webhooks, handler), methods=["GET"])

    return [
        post("/v1/customers", lambda c: checkout.create_customer(c.state, c.params)),
        get("/v1/customers/{id}", _retrieve("customer")),
        post(
            "/v1/checkout/sessions",
            lambda c: checkout.public_session(
                checkout.create_session(c.state, c.params, c.base_url)
            ),
        ),
        get("/v1/checkout/sessions/{id}", _retrieve("checkout.session", checkout.public_session)),
        post(
            "/v1/payment_intents",
            lambda c: payments.create_payment_intent(
                c.state, c.webhooks, c.params, c.event_request
            ),
        ),
        get("/v1/payment_intents/{id}", _retrieve("payment_intent")),
        get("/v1/payment_methods/{id}", _retrieve("payment_method")),
        get("/v1/charges/{id}", _retrieve("charge")),
        post(
            "/v1/refunds",
            lambda c: payments.create_refund(c.state, c.webhooks, c.params, c.event_request),
        ),
        get("/v1/refunds/{id}", _retrieve("refund")),
        get("/v1/invoices/{id}", _retrieve("invoice")),
    ]


async def unknown_route(request: Request) -> Response:
    """Stripe's answer for a path it does not have, in its envelope (so the package raises
    InvalidRequestError rather than a parse error)."""
    message = (
        f"Unrecognized request URL ({request.method}: {request.url.path}). The Stripe simulator "
        "serves only a subset of Stripe's API: see docs/contributors/stripe-simulator.md."
    )
    return JSONResponse(
        {"error": {"type": "invalid_request_error", "message": message}}, status_code=404
    )
