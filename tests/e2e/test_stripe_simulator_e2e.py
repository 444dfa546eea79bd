"""The Stripe simulator driven by Stripe's own package: checkout through the hosted page,
signed webhooks, refunds, idempotency, off-session charges and declines, disputes, and the
delivery controls."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from tests.e2e.stripe_sim import Received, StripeSimulator, WebhookReceiver


@pytest.fixture(scope="module")
def sim() -> Iterator[StripeSimulator]:
    simulator = StripeSimulator("--webhook-backoff", "0.05")
    yield simulator
    simulator.stop()


@pytest.fixture
def receiver(sim: StripeSimulator) -> Iterator[WebhookReceiver]:
    """This test's own endpoint: events are queued to the URL set when they happen."""
    endpoint = WebhookReceiver()
    sim.set_webhook(endpoint.url, deliver=True)
    yield endpoint
    sim.declines(False)
    endpoint.stop()


def session_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "client_reference_id": "org_1",
        "metadata": {"org_id": "org_1", "pack_id": "starter"},
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 500,
                    "product_data": {"name": "Starter credits"},
                },
            }
        ],
        "success_url": "http://127.0.0.1:9/paid?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:9/cancelled",
        "invoice_creation": {"enabled": True, "invoice_data": {"metadata": {"org_id": "org_1"}}},
        "payment_intent_data": {"setup_future_usage": "off_session", "metadata": {"pack": "s"}},
    }
    params.update(overrides)
    return params


def verified(sim: StripeSimulator, deliveries: list[Received]) -> list[stripe.Event]:
    return [
        stripe.Webhook.construct_event(d.body, d.signature, sim.webhook_secret) for d in deliveries
    ]


def paid_session(sim: StripeSimulator, receiver: WebhookReceiver, **overrides: Any) -> Any:
    """A session paid through the page, once its three events have arrived."""
    client = sim.client()
    customer = client.v1.customers.create(params={"email": "buyer@example.com"})
    session = client.v1.checkout.sessions.create(
        params=session_params(customer=customer.id, **overrides)
    )
    expected = len(receiver.received) + 3
    assert sim.pay(session.id).status_code == 303
    receiver.wait_for(expected)
    return client.v1.checkout.sessions.retrieve(session.id)


def test_checkout_through_the_page_sends_signed_events_in_order(
    sim: StripeSimulator, receiver: WebhookReceiver
) -> None:
    client = sim.client()
    customer = client.v1.customers.create(
        params={"email": "buyer@example.com", "name": "Buyer", "metadata": {"org_id": "org_1"}}
    )
    assert customer.id.startswith("cus_") and customer.metadata["org_id"] == "org_1"
    assert client.v1.customers.retrieve(customer.id).email == "buyer@example.com"
    session = client.v1.checkout.sessions.create(params=session_params(customer=customer.id))
    assert session.id.startswith("cs_test_")
    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert (session.amount_total, session.currency) == (500, "usd")
    assert session.payment_intent is None and session.invoice is None
    assert session.url == f"{sim.url}/checkout/{session.id}"

    page = httpx.get(session.url)
    assert page.status_code == 200
    assert "Starter credits" in page.text and "5.00 USD" in page.text
    assert "<script" not in page.text and f'action="/checkout/{session.id}/pay"' in page.text
    assert 'href="http://127.0.0.1:9/cancelled"' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "form-action 'self' http://127.0.0.1:9" in policy

    paid = sim.pay(session.id)
    assert paid.status_code == 303
    assert paid.headers["location"] == f"http://127.0.0.1:9/paid?session={session.id}"
    events = verified(sim, receiver.wait_for(3))
    assert [e.type for e in events] == [
        "checkout.session.completed",
        "invoice.finalized",
        "invoice.paid",
    ]
    assert all(d.content_type.startswith("application/json") for d in receiver.received)
    completed = events[0].data.object
    assert completed.id == session.id and completed.payment_status == "paid"
    assert completed.client_reference_id == "org_1" and completed.metadata["pack_id"] == "starter"
    assert events[0].api_version and events[0].livemode is False

    invoice = events[2].data.object
    assert invoice.number.startswith("NXT-") and invoice.status == "paid"
    assert (invoice.amount_paid, invoice.amount_due, invoice.currency) == (500, 500, "usd")
    assert invoice.metadata["org_id"] == "org_1" and invoice.customer == customer.id
    assert invoice.hosted_invoice_url.startswith(sim.url)
    assert httpx.get(invoice.invoice_pdf).content.startswith(b"%PDF-")
    assert events[1].data.object.status == "open"

    session = client.v1.checkout.sessions.retrieve(session.id)
    assert (session.status, session.payment_status) == ("complete", "paid")
    assert session.invoice == invoice.id and session.customer == customer.id
    assert session.url is None
    intent = client.v1.payment_intents.retrieve(session.payment_intent)
    assert (intent.status, intent.amount, intent.metadata["pack"]) == ("succeeded", 500, "s")
    assert intent.payment_method.startswith("pm_") and intent.latest_charge.startswith("ch_")
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.paid, charge.amount_refunded, charge.refunded) == (True, 0, False)

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            receiver.received[0].body, receiver.received[0].signature, "whsec_wrong"
        )
    intents_before = sim.counts()["payment_intent"]
    again = sim.pay(session.id)
    assert again.status_code == 409 and "already paid" in again.text
    assert "already paid" in httpx.get(f"{sim.url}/checkout/{session.id}").text
    assert sim.counts()["payment_intent"] == intents_before


def test_invalid_requests_are_refused_as_stripe_refuses_them(sim: StripeSimulator) -> None:
    client = sim.client()
    sessions = client.v1.checkout.sessions
    with pytest.raises(stripe.InvalidRequestError) as missing:
        sessions.create(params={"mode": "payment", "success_url": "http://127.0.0.1:9/"})
    assert (missing.value.param, missing.value.code) == ("line_items", "parameter_missing")
    with pytest.raises(stripe.InvalidRequestError) as mode:
        sessions.create(params=session_params(mode="subscription"))
    assert mode.value.param == "mode"
    with pytest.raises(stripe.InvalidRequestError) as customer:
        sessions.create(params=session_params(customer="cus_nobody"))
    assert (customer.value.param, customer.value.code) == ("customer", "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as url:
        sessions.create(params=session_params(success_url="/relative"))
    assert (url.value.param, url.value.code) == ("success_url", "url_invalid")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sessions.create(params=session_params(colour="blue"))
    assert unknown.value.code == "parameter_unknown"
    with pytest.raises(stripe.InvalidRequestError) as absent:
        sessions.retrieve("cs_test_nothing")
    assert absent.value.http_status == 404
    wrong_key = stripe.StripeClient(
        "sk_test_wrong", base_addresses={"api": sim.url}, http_client=stripe.HTTPXClient()
    )
    with pytest.raises(stripe.AuthenticationError):
        asyncio.run(wrong_key.v1.customers.create_async(params={"email": "x@example.com"}))


def test_async_payment_completes_unpaid_then_succeeds(
    sim: StripeSimulator, receiver: WebhookReceiver
) -> None:
    async def scenario() -> str:
        client = sim.client()
        params = session_params(customer_email="late@example.com", invoice_creation=None)
        session = await client.v1.checkout.sessions.create_async(params=params)
        assert session.customer is None
        return session.id

    session_id = asyncio.run(scenario())
    assert sim.pay(session_id, async_=True).status_code == 303
    events = verified(sim, receiver.wait_for(2))
    assert [(e.type, e.data.object.payment_status) for e in events] == [
        ("checkout.session.completed", "unpaid"),
        ("checkout.session.async_payment_succeeded", "paid"),
    ]
    session = events[1].data.object
    assert session.customer.startswith("cus_") and session.invoice is None
    customer = sim.client().v1.customers.retrieve(session.customer)
    assert customer.email == "late@example.com"


def test_refunds_add_up_and_never_exceed_the_charge(
    sim: StripeSimulator, receiver: WebhookReceiver
) -> None:
    session = paid_session(sim, receiver)
    client = sim.client()
    partial = client.v1.refunds.create(
        params={"payment_intent": session.payment_intent, "amount": 200, "reason": "duplicate"}
    )
    assert (partial.status, partial.amount, partial.reason) == ("succeeded", 200, "duplicate")
    rest = client.v1.refunds.create(params={"charge": partial.charge})
    assert rest.amount == 300
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": session.payment_intent, "amount": 1})
    charge = client.v1.charges.retrieve(partial.charge)
    assert (charge.amount_refunded, charge.refunded) == (500, True)
    refunded = verified(sim, receiver.wait_for(5)[3:])
    assert [e.type for e in refunded] == ["charge.refunded", "charge.refunded"]
    assert [e.data.object.amount_refunded for e in refunded] == [200, 500]


def test_too_large_a_refund_is_refused(sim: StripeSimulator, receiver: WebhookReceiver) -> None:
    session = paid_session(sim, receiver)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        sim.client().v1.refunds.create(
            params={"payment_intent": session.payment_intent, "amount": 501}
        )
    assert (too_much.value.param, too_much.value.code) == ("amount", "amount_too_large")


def test_an_idempotency_key_replays_the_first_answer(sim: StripeSimulator) -> None:
    client = sim.client()
    key = str(uuid.uuid4())
    params = {"email": "once@example.com"}
    first = client.v1.customers.create(params=params, options={"idempotency_key": key})
    before = sim.counts()["customer"]
    second = client.v1.customers.create(params=params, options={"idempotency_key": key})
    assert second.id == first.id and sim.counts()["customer"] == before
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(
            params={"email": "other@example.com"}, options={"idempotency_key": key}
        )


def test_off_session_payment_succeeds_then_declines(
    sim: StripeSimulator, receiver: WebhookReceiver
) -> None:
    session = paid_session(sim, receiver)
    client = sim.client()
    saved = client.v1.payment_intents.retrieve(session.payment_intent)
    params = {
        "amount": 1500,
        "currency": "usd",
        "customer": session.customer,
        "payment_method": saved.payment_method,
        "off_session": True,
        "confirm": True,
        "metadata": {"org_id": "org_1", "reason": "auto_recharge"},
    }
    intent = client.v1.payment_intents.create(params=params)
    assert (intent.status, intent.amount) == ("succeeded", 1500)
    assert client.v1.charges.retrieve(intent.latest_charge).paid is True
    succeeded = verified(sim, receiver.wait_for(4))[3]
    assert (succeeded.type, succeeded.data.object.id) == ("payment_intent.succeeded", intent.id)

    sim.declines(True)
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(params=params)
    assert declined.value.code == "card_declined"
    error = declined.value.json_body["error"]
    assert error["decline_code"] == "insufficient_funds"
    assert error["payment_intent"]["status"] == "requires_payment_method"
    failed = verified(sim, receiver.wait_for(5))[4]
    assert failed.type == "payment_intent.payment_failed"
    assert failed.data.object.id == error["payment_intent"]["id"]

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.payment_intents.create(params={**params, "customer": "cus_nobody"})
    assert unknown.value.param == "customer"


def test_disputes_are_created_and_closed(sim: StripeSimulator, receiver: WebhookReceiver) -> None:
    session = paid_session(sim, receiver)
    dispute = sim.dispute(payment_intent=session.payment_intent)
    assert dispute["id"].startswith("dp_") and dispute["status"] == "needs_response"
    assert dispute["amount"] == 500 and dispute["charge"].startswith("ch_")
    sim.close_dispute(dispute["id"], "won")
    created, closed = verified(sim, receiver.wait_for(5)[3:])
    assert (created.type, created.data.object.status) == (
        "charge.dispute.created",
        "needs_response",
    )
    assert (closed.type, closed.data.object.status) == ("charge.dispute.closed", "won")
    assert closed.data.object.id == dispute["id"]


def test_delivery_off_records_events_and_resend_sends_them(
    sim: StripeSimulator, receiver: WebhookReceiver
) -> None:
    session = paid_session(sim, receiver)
    client = sim.client()
    sim.set_webhook(receiver.url, deliver=False)
    held = client.v1.refunds.create(params={"payment_intent": session.payment_intent, "amount": 1})
    sim.set_webhook(receiver.url, deliver=True)
    client.v1.refunds.create(params={"payment_intent": session.payment_intent, "amount": 2})
    # Delivery is in order from one queue: the held event would have come before this one.
    after = json.loads(receiver.wait_for(4)[3].body)
    assert after["data"]["object"]["amount_refunded"] == 3
    recorded = [e for e in sim.events() if e["type"] == "charge.refunded"][-2:]
    assert [json.loads(e["payload"])["data"]["object"]["amount_refunded"] for e in recorded] == [
        1,
        3,
    ]
    assert (recorded[0]["attempts"], recorded[0]["delivered"]) == (0, False)
    assert held.amount == 1 and len(receiver.received) == 4

    for copy in (1, 2):
        answer = sim.resend(recorded[0]["id"])
        assert (answer["attempts"], answer["delivered"], answer["last_status"]) == (copy, True, 200)
    duplicates = receiver.wait_for(6)[4:]
    assert {d.body.decode() for d in duplicates} == {recorded[0]["payload"]}
    assert {e.id for e in verified(sim, duplicates)} == {recorded[0]["id"]}


def test_a_failing_endpoint_is_retried_until_it_accepts(
    sim: StripeSimulator, receiver: WebhookReceiver
) -> None:
    receiver.fail_next = 2
    session = paid_session(sim, receiver)
    first = next(
        e
        for e in sim.events()
        if e["type"] == "checkout.session.completed"
        and json.loads(e["payload"])["data"]["object"]["id"] == session.id
    )
    assert (first["attempts"], first["delivered"]) == (3, True)
