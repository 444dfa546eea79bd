"""The edge's options, declared once (proxy/options/schema.py)."""

from proxy.options.mitm import declare, mitm_problems, mitm_value, mitm_values
from proxy.options.option import ENV_PREFIX, Option
from proxy.options.schema import BY_MITM, BY_NAME, OPTIONS


def problems(settings: object) -> list[str]:
    """What is wrong with each option's value in `settings` (an object with a field per option:
    launch/settings.py's Settings), each naming its TOML key."""
    found = []
    for option in OPTIONS:
        problem = option.problem(getattr(settings, option.name))
        if problem is not None:
            found.append(f"`{option.name}` {problem}")
    return found


__all__ = [
    "BY_MITM",
    "BY_NAME",
    "ENV_PREFIX",
    "OPTIONS",
    "Option",
    "declare",
    "mitm_problems",
    "mitm_value",
    "mitm_values",
    "problems",
]
