"""What a value of an option must be, beyond its type: each check returns None for a good value
or says what is wrong, naming the option by the name its reader knows (the TOML key under
run_proxy.py, the `nextapi_…` option under mitmdump). Shared by the launcher's settings and
the chain's option check (addons/options.py), so both refuse the same values the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxy.control_urls import control_urls_problem
from proxy.core import netaddr
from proxy.limits.limiter import PER_DAY, PER_MINUTE

Check = Callable[[Any], str | None]
LIMIT_FIELDS = (PER_MINUTE, PER_DAY, "concurrent_tasks")


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be positive"


def at_least_zero(value: Any) -> str | None:
    return None if value >= 0 else "must be >= 0"


def up_to(most: float) -> Check:
    def check(value: Any) -> str | None:
        return None if 0 < value <= most else f"must be in (0, {most:g}]"

    return check


def url_of(*schemes: str, also: tuple[str, ...] = (), required: bool = False) -> Check:
    """A URL with one of `schemes` (or one of the words in `also`); empty: not set, unless
    `required`."""
    prefixes = tuple(f"{scheme}://" for scheme in schemes)

    def check(value: str) -> str | None:
        if (not value and not required) or value in also or value.startswith(prefixes):
            return None
        words = " or ".join([" or ".join(f"a {p} URL" for p in prefixes), *also])
        return f"must be {words}"

    return check


def control_urls(value: str) -> str | None:
    """`control_url`: one control plane's URL, or several separated by commas (empty: not set);
    the same rule as the edge's ControlClient reads (proxy/control_urls.py)."""
    return control_urls_problem(value)


def networks(entries: list[str]) -> str | None:
    """Addresses or CIDRs, as the edge reads trusted proxies."""
    try:
        netaddr.parse_networks(entries)
    except ValueError as exc:
        return f"must be addresses or CIDRs: {exc}"
    return None


def limits_problem(limits: Any) -> str | None:
    if not isinstance(limits, dict) or not all(
        name in LIMIT_FIELDS and isinstance(v, int) and not isinstance(v, bool) and v > 0
        for name, v in limits.items()
    ):
        return f"fields {', '.join(LIMIT_FIELDS)} (positive integers)"
    return None


def model_limits_problem(table: Any) -> str | None:
    if not isinstance(table, dict):
        return "must be a JSON object of models"
    for model, limits in table.items():
        problem = limits_problem(limits)
        if problem is not None:
            return f"[{model}]: {problem}"
    return None
