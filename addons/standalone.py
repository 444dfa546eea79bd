"""The composition root of `mitmdump -s addons/gateway.py`, first in its chain: once the options
are final it configures the services whole from them (as launch/ does from its settings for
run_proxy.py), then runs the edge apart from its control plane (proxy/apart.py): policy pulled
from it and kept on disk, usage spooled locally and shipped."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from mitmproxy import ctx, exceptions
from mitmproxy.proxy.mode_specs import ProxyMode, ReverseMode

from addons.callback_ingress import listen_address
from proxy.apart import EdgeApart
from proxy.options import declare, mitm_value
from proxy.services import EdgeConfig, EdgeServices


def upstream_of_mode() -> str:
    """The upstream of mitmproxy's reverse mode, as a URL."""
    mode = ProxyMode.parse(ctx.options.mode[0]) if ctx.options.mode else None
    if not isinstance(mode, ReverseMode):
        raise exceptions.OptionsError("the gateway is a reverse proxy: --mode reverse:URL")
    host, port = mode.address
    return f"{mode.scheme}://{host}:{port}"


class Standalone:
    def __init__(self, services: EdgeServices) -> None:
        self.services = services
        self.apart: EdgeApart | None = None

    def load(self, loader) -> None:
        declare(
            loader,
            "nextapi_control_url",
            "nextapi_token_env",
            "nextapi_data_dir",
            "nextapi_snapshot_max_age_hours",
            "nextapi_redis_url",
            "nextapi_redis_prefix",
            "nextapi_redis_failure",
            "nextapi_usage_flush_interval",
        )

    def configure(self, updated: set[str]) -> None:
        if self.apart is not None:  # an option changed while serving
            self._configure_services()

    def _configure_services(self) -> None:
        config = EdgeConfig.from_values(
            partial(mitm_value, ctx.options), upstream=upstream_of_mode(), apart=True
        )
        try:
            self.services.configure(config, listen_address=listen_address)
        except ValueError as exc:
            raise exceptions.OptionsError(str(exc)) from None

    async def running(self) -> None:
        url = ctx.options.nextapi_control_url
        if not url:
            raise exceptions.OptionsError("nextapi_control_url is required to run the edge alone")
        self._configure_services()  # every addon has declared its options by now
        self.apart = EdgeApart(
            self.services,
            url,
            os.environ.get(ctx.options.nextapi_token_env, ""),
            Path(ctx.options.nextapi_data_dir),
            snapshot_max_age=ctx.options.nextapi_snapshot_max_age_hours * 3600,
            flush_interval=ctx.options.nextapi_usage_flush_interval,
        )
        await self.apart.start()

    async def done(self) -> None:
        if self.apart is not None:
            await self.apart.stop()
        await self.services.aclose()
