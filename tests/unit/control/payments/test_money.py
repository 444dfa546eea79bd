"""Money stays integers: minor units in, micro-credits out, one module converting (USD has two
decimals, JPY none)."""

import pytest

from control.payments import money


@pytest.mark.parametrize(
    ("currency", "digits", "typed", "minor", "shown"),
    [
        ("usd", 2, "12.34", 1234, "12.34 USD"),
        ("USD", 2, "12.5", 1250, "12.50 USD"),
        ("usd", 2, "7", 700, "7.00 USD"),
        ("jpy", 0, "1234", 1234, "1234 JPY"),
        ("eur", 2, "0.05", 5, "0.05 EUR"),
        ("krw", 0, "50000", 50000, "50000 KRW"),
    ],
)
def test_each_exponent_converts_both_ways(
    currency: str, digits: int, typed: str, minor: int, shown: str
) -> None:
    assert money.exponent(currency) == digits
    assert money.parse_major(typed, currency) == minor
    assert money.label(minor, currency) == shown
    assert money.parse_major(money.format_major(minor, currency), currency) == minor


@pytest.mark.parametrize(
    ("typed", "currency"),
    [
        ("12.345", "usd"),
        ("12.5", "jpy"),
        ("1,000", "usd"),
        ("-1", "usd"),
        ("", "usd"),
        ("1e3", "usd"),
        ("0", "usd"),
        ("100000000", "jpy"),
        (".5", "usd"),
    ],
)
def test_amounts_that_are_not_exact_are_refused(typed: str, currency: str) -> None:
    with pytest.raises(money.MoneyError):
        money.parse_major(typed, currency)


def test_unknown_and_three_decimal_currencies_are_refused() -> None:
    for currency in ("xyz", "kwd", "", "us"):
        with pytest.raises(money.MoneyError):
            money.exponent(currency)


def test_amount_takes_only_integers_in_range() -> None:
    assert money.amount(1, "usd") == 1
    assert money.amount(money.MAX_AMOUNT, "jpy") == money.MAX_AMOUNT
    for bad in (0, -5, money.MAX_AMOUNT + 1, 12.0, True, "12", None):
        with pytest.raises(money.MoneyError):
            money.amount(bad, "usd")


def test_negative_amounts_read_with_their_sign() -> None:
    assert money.format_major(-1234, "usd") == "-12.34"
    assert money.format_major(-5, "usd") == "-0.05"
    assert money.format_major(-1234, "jpy") == "-1234"


def test_refunded_shares_round_down_and_a_whole_refund_is_exact() -> None:
    credits = 10_000_000  # 10 credits for 3.00 USD
    assert money.credits_for(credits, 300, 300) == credits
    assert money.credits_for(credits, 100, 300) == 3_333_333
    # piece by piece, cumulative: never more than granted, all of it at the end
    shares = [money.credits_for(credits, part, 300) for part in (100, 200, 300)]
    assert shares == [3_333_333, 6_666_666, credits]
    assert money.credits_for(credits, 500, 300) == credits  # more than paid: capped
    assert money.credits_for(credits, -1, 300) == 0
    # JPY: the same arithmetic with no minor digits
    assert money.credits_for(7, 1, 3) == 2
    with pytest.raises(money.MoneyError):
        money.credits_for(credits, 1, 0)


def test_credits_read_as_credits() -> None:
    assert money.credits_label(10_000_000) == "10 credits"
    assert money.credits_label(2_500_000) == "2.5 credits"
    assert money.credits_label(1_000_000) == "1 credit"
    assert money.credits_label(1) == "0.000001 credits"
    assert money.credits_label(-1_500_000) == "-1.5 credits"
