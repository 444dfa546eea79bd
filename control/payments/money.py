"""Money, as integers from end to end: amounts in a currency's minor units (what Stripe sends
and takes: cents for USD, yen for JPY) and credits in micro-credits (the ledger's unit). This
module is the one place where one turns into the other, or into text; nothing here is a float.
"""

from __future__ import annotations

# Stripe's currencies by the digits of their minor unit. Zero-decimal ones are charged in whole
# units (Stripe's list); the three-decimal ones (BHD, JOD, KWD, OMR, TND) are left out, as
# Stripe wants their amounts rounded to tens and no pack needs them yet.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
TWO_DECIMAL = frozenset(
    "usd eur gbp cad aud nzd chf sek nok dkk pln czk huf sgd hkd cny twd inr idr myr php thb "
    "aed sar ils mxn brl zar try".split()
)
CURRENCIES = ZERO_DECIMAL | TWO_DECIMAL

# The most Stripe charges in one payment: eight digits of minor units.
MAX_AMOUNT = 99_999_999


class MoneyError(ValueError):
    """An amount or currency this module refuses; the message says why, for the caller."""


def exponent(currency: str) -> int:
    """The digits of the currency's minor unit: 2 for USD (cents), 0 for JPY."""
    code = currency.lower()
    if code in TWO_DECIMAL:
        return 2
    if code in ZERO_DECIMAL:
        return 0
    raise MoneyError(f"currency {currency!r} is not one of {', '.join(sorted(CURRENCIES))}")


def amount(value: object, currency: str) -> int:
    """`value` as an amount in minor units of `currency`: an integer from 1 to MAX_AMOUNT."""
    exponent(currency)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MoneyError("an amount is an integer number of the currency's minor units")
    if not 1 <= value <= MAX_AMOUNT:
        raise MoneyError(f"an amount is 1 to {MAX_AMOUNT} minor units")
    return value


def parse_major(text: str, currency: str) -> int:
    """An amount typed in major units ("12.34" USD, "1200" JPY) as minor units, exactly: more
    decimals than the currency has are refused rather than rounded."""
    digits = exponent(currency)
    whole, dot, fraction = text.strip().partition(".")
    if not whole.isdigit() or (dot and not fraction.isdigit()) or len(fraction) > digits:
        places = f"at most {digits} decimals" if digits else "no decimals"
        raise MoneyError(f"{text!r} is not an amount in {currency.upper()} ({places})")
    return amount(int(whole) * 10**digits + int(fraction.ljust(digits, "0") or 0), currency)


def format_major(minor: int, currency: str) -> str:
    """Minor units as the amount a person reads: 1234 USD is "12.34", 1234 JPY is "1234"."""
    digits = exponent(currency)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"


def label(minor: int, currency: str) -> str:
    """ "12.34 USD": an amount with its currency, for pages, CSV and Stripe's product names."""
    return f"{format_major(minor, currency)} {currency.upper()}"


def credits_for(credits: int, part: int, whole: int) -> int:
    """The micro-credits that `part` of a payment of `whole` (both minor units, one currency)
    bought, of the `credits` the whole bought: rounded down, so that the shares of a payment
    refunded piece by piece never sum to more than it granted, and a whole refund is exactly
    `credits`."""
    if whole <= 0:
        raise MoneyError("a payment's amount is positive")
    return credits * min(max(part, 0), whole) // whole


MICRO = 1_000_000  # micro-credits in a credit


def credits_label(micro: int) -> str:
    """Micro-credits as a person reads credits: 10000000 is "10 credits", 2500000 "2.5"."""
    whole, fraction = divmod(abs(micro), MICRO)
    decimals = f"{fraction:06d}".rstrip("0")
    number = f"{'-' if micro < 0 else ''}{whole}{'.' + decimals if decimals else ''}"
    return f"{number} credit" if number == "1" else f"{number} credits"
