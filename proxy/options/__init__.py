"""The edge's options, declared once (proxy/options/schema.py)."""

from proxy.options.mitm import declare, mitm_values
from proxy.options.option import ENV_PREFIX, Option
from proxy.options.schema import BY_MITM, BY_NAME, OPTIONS

__all__ = ["BY_MITM", "BY_NAME", "ENV_PREFIX", "OPTIONS", "Option", "declare", "mitm_values"]
