"""Refuses a bad value of any of the chain's options, as run_proxy.py refuses it: each option's
bounds are the schema's (proxy/options/checks.py), checked here once for the whole chain rather
than in every addon that reads one. First in the chain, so no addon sees a value it refused."""

from __future__ import annotations

from mitmproxy import ctx, exceptions

from proxy.options import mitm_problems


class OptionCheck:
    def configure(self, updated: set[str]) -> None:
        problems = mitm_problems(ctx.options, updated)
        if problems:
            raise exceptions.OptionsError("; ".join(problems))
