"""The shapes of the payment calls: credit packs, checkout, payments, invoices, and the
low-balance alert with its auto-recharge. Money is an integer of the currency's minor units
(`amount`, `currency`), credits are micro-credits; `amount_display` is the amount as read."""

from __future__ import annotations

from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

from control.api.schemas.common import Grant, LongText, Text, Time
from control.payments.money import CURRENCIES, MAX_AMOUNT

Currency = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=3,
        pattern="^[a-zA-Z]{3}$",
        description=f"ISO 4217, one of {', '.join(sorted(CURRENCIES))}",
        examples=["usd"],
    ),
]
Minor = Annotated[
    int, Meta(ge=1, le=MAX_AMOUNT, description="the currency's minor units (cents for USD)")
]
ReturnUrl = Annotated[
    str, Meta(max_length=2048, examples=["https://app.acme.example/billing/done"])
]


class CreditPackPut(Struct, forbid_unknown_fields=True):
    credits: Grant
    amount: Minor
    currency: Currency
    active: bool | UnsetType = UNSET
    name: Text | UnsetType = UNSET


class CreditPack(Struct):
    id: str
    name: str
    credits: int
    amount: int
    currency: str
    amount_display: str
    active: bool
    created_at: Time
    updated_at: Time


class CreditPackPage(Struct):
    items: list[CreditPack]


class CheckoutCreate(Struct, forbid_unknown_fields=True):
    pack: Annotated[str, Meta(max_length=64)]
    save_card: (
        Annotated[bool, Meta(description="Keep the card for auto-recharge (off-session payments).")]
        | UnsetType
    ) = UNSET
    success_url: ReturnUrl | UnsetType = UNSET
    cancel_url: ReturnUrl | UnsetType = UNSET


class Checkout(Struct):
    id: Annotated[str, Meta(description="The Checkout Session's id (`cs_…`).")]
    url: Annotated[str, Meta(description="Stripe's payment page: send the payer there.")]
    pack: str
    credits: int
    amount: int
    currency: str


class Payment(Struct):
    id: str
    kind: Annotated[str, Meta(examples=["checkout", "recharge"])]
    pack: str
    credits: int
    amount: int
    currency: str
    amount_display: str
    status: Annotated[str, Meta(examples=["open", "paid", "mismatch", "pending", "failed"])]
    payment_intent: str | None
    credits_taken_back: int
    error: str | None
    created_at: Time
    updated_at: Time


class PaymentPage(Struct):
    items: list[Payment]
    next_cursor: str | None


class RefundCreate(Struct, forbid_unknown_fields=True):
    amount: Minor | UnsetType = UNSET
    reason: LongText | UnsetType = UNSET


class Refund(Struct):
    id: Annotated[str, Meta(description="Stripe's refund (`re_…`).")]
    payment: str
    amount: int
    currency: str
    amount_display: str
    status: str


class Invoice(Struct):
    id: str
    number: str | None
    amount: int
    currency: str
    amount_display: str
    status: str
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    issued_at: Time
    updated_at: Time


class InvoicePage(Struct):
    items: list[Invoice]
    next_cursor: str | None


class LowBalancePut(Struct, forbid_unknown_fields=True):
    threshold: Annotated[int, Meta(ge=0, le=2**53, description="micro-credits")] | None
    pack: Annotated[str, Meta(max_length=64)] | UnsetType | None = UNSET
    auto_recharge: bool | UnsetType = UNSET


class LowBalance(Struct):
    threshold: int | None
    pack: str | None
    auto_recharge: bool
    card_saved: bool
    low: Annotated[bool, Meta(description="Under the threshold since the last crossing.")]
    open_disputes: int
