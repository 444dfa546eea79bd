"""The Stripe simulator's pure parts: Stripe's bracket-notation form encoding, amounts in major
units by currency exponent, the webhook signature against Stripe's own code, and the PDF."""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

import pytest
import stripe
from stripe._encode import _api_encode

from simulator.stripe.errors import StripeError
from simulator.stripe.forms import parse_form
from simulator.stripe.pages import major_units, tiny_pdf
from simulator.stripe.webhooks import sign


def test_parse_form_reads_what_the_stripe_package_encodes() -> None:
    params = {
        "mode": "payment",
        "metadata": {"org_id": "org_1", "pack": ""},
        "line_items": [
            {
                "quantity": 2,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 500,
                    "product_data": {"name": "Pack"},
                },
            },
            {"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 7}},
        ],
        "expand": ["payment_intent", "invoice"],
        "off_session": True,
    }
    parsed = parse_form(urlencode(list(_api_encode(params))))
    assert parsed == {
        "mode": "payment",
        "metadata": {"org_id": "org_1", "pack": ""},
        "line_items": [
            {
                "quantity": "2",
                "price_data": {
                    "currency": "usd",
                    "unit_amount": "500",
                    "product_data": {"name": "Pack"},
                },
            },
            {"quantity": "1", "price_data": {"currency": "usd", "unit_amount": "7"}},
        ],
        "expand": ["payment_intent", "invoice"],
        "off_session": "true",
    }


def test_parse_form_orders_indexes_numerically_and_appends_empty_brackets() -> None:
    body = "items[10]=k&items[2]=c&tags[]=a&tags[]=b"
    assert parse_form(body) == {"items": ["c", "k"], "tags": ["a", "b"]}


@pytest.mark.parametrize("body", ["a[b=1", "[x]=1", "a=1&a[b]=2"])
def test_parse_form_refuses_malformed_names(body: str) -> None:
    with pytest.raises(StripeError) as refused:
        parse_form(body)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (500, "usd", "5.00 USD"),
        (5, "eur", "0.05 EUR"),
        (500, "jpy", "500 JPY"),
        (1234, "kwd", "1.234 KWD"),
        (-250, "usd", "-2.50 USD"),
    ],
)
def test_major_units_follow_the_currency_exponent(amount: int, currency: str, shown: str) -> None:
    assert major_units(amount, currency) == shown


def test_the_signature_is_the_one_stripe_verifies() -> None:
    payload, secret = '{"id": "evt_1", "object": "event"}', "whsec_abc"
    header = sign(payload, secret, int(time.time()))
    stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, header, "whsec_other", tolerance=300)
    stale = sign(payload, secret, int(time.time()) - 3600)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, stale, secret, tolerance=300)


def test_the_invoice_pdf_has_a_correct_cross_reference_table() -> None:
    pdf = tiny_pdf("Invoice NXT-0001 (5.00 USD)")
    start = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", pdf).group(1))
    assert pdf[start:].startswith(b"xref\n0 6\n")
    offsets = [int(line[:10]) for line in pdf[start:].split(b"\n")[3:8]]
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number)
    assert b"(Invoice NXT-0001 \\(5.00 USD\\)) Tj" in pdf
