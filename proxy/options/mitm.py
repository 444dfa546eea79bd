"""The schema's options as mitmproxy options: what an addon's `load` declares, and the values a
launcher's settings give them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.options.schema import BY_MITM, BY_NAME, OPTIONS


def declare(loader: Any, *names: str) -> None:
    """Adds the named mitmproxy options (`nextapi_…`) to `loader`, with the schema's type,
    default and help: the same defaults under `mitmdump -s addons/gateway.py` as under
    run_proxy.py."""
    for name in names:
        option = BY_MITM[name]  # KeyError: an option the schema does not declare
        default = option.to_mitm(option.fresh_default())
        loader.add_option(name, option.mitm_kind, default, option.help, choices=option.choices)


def mitm_values(settings: Any, known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every mitmproxy option the schema maps `settings` onto (those with a `mitm` name), as
    mitmproxy holds them; with `known` (a master's options), only those it has."""
    return {
        option.mitm: option.to_mitm(getattr(settings, option.name))
        for option in OPTIONS
        if option.mitm is not None and (known is None or option.mitm in known)
    }


def mitm_problems(options: Any, updated: set[str]) -> list[str]:
    """What is wrong with the schema's options among `updated` as mitmproxy holds them (a
    master's or `ctx.options`), each naming its `nextapi_…` option."""
    found = []
    for name in sorted(updated):
        option = BY_MITM.get(name)
        if option is None or name not in options:
            continue
        try:
            value = option.coerce(getattr(options, name))
        except (TypeError, ValueError):
            found.append(f"{name} must be {'JSON' if option.mitm_kind is str else 'valid'}")
            continue
        problem = option.problem(value)
        if problem is not None:
            found.append(f"{name} {problem}")
    return found


def mitm_value(options: Any, name: str) -> Any:
    """The schema option `name`'s value, read from its mitmproxy option in `options`."""
    option = BY_NAME[name]
    assert option.mitm is not None, f"{name} is no mitmproxy option"
    return option.coerce(getattr(options, option.mitm))
