"""The edge's mitmproxy master: a reverse proxy's own addons, then the gateway's chain, with the
options its settings give; started on the process's loop beside its video origin."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitmproxy import master, options
from mitmproxy.addons import next_layer, proxyserver, tlsconfig

from addons.drain import Drain
from addons.gateway import chain
from launch.dispatch import DirectAddonManager
from launch.masters import ListenReporter, first, stop_master
from launch.serving import AppServer
from launch.settings import Settings, connection_timeouts, split_hostport
from launch.videos import video_delivery
from launch.workers import WORKER_ENV, MetricsFile, use_shared_port
from proxy.core.video_assets import AssetStore
from proxy.options import mitm_values
from proxy.services import EdgeServices
from proxy.videos.origin import VideoOrigin


class EdgeListening(ListenReporter):
    """Prints the edge's bound address once mitmproxy listens (none: it could not, it logged
    why, and start_edge stops)."""

    def listening(self, server: Any) -> None:
        if self.address is not None:
            host, port = self.address
            print(f"edge listening on {host}:{port}", flush=True)


def build_master(
    settings: Settings, services: EdgeServices, drain: Drain | None = None
) -> tuple[master.Master, EdgeListening]:
    """A master with only the addons a reverse proxy needs, then the gateway's chain on the
    services the caller configured."""
    host, port = split_hostport(settings.listen, "listen")
    opts = options.Options()
    edge = master.Master(opts)
    edge.addons = DirectAddonManager(edge)  # only the addons that handle an event see it
    reporter = EdgeListening()
    edge.addons.add(
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        *chain(services),
        reporter,
        # Last: a request counts as answered once every other addon is done with it.
        *([drain] if drain is not None else []),
    )
    opts.update(
        mode=[f"reverse:{settings.upstream}"],
        listen_host=host,
        listen_port=port,
        connection_strategy="lazy",
        keep_host_header=False,
        # Bodies past our own limit are refused by the Edge addon in the envelope; this hard
        # cap only stops a client from making mitmproxy buffer an unbounded body.
        body_size_limit=str(settings.max_body_bytes * 4),
        # Client connections (addons/connections.py): HTTP/1.1 only, so that every client is
        # read by the guarded layer; mitmproxy's inactivity timeout only backs its limits up.
        http2=False,
        tcp_timeout=max(connection_timeouts(settings)),
        # mitmproxy keeps its own CA here rather than in the home directory.
        confdir=str(settings.data_dir / "mitmproxy"),
        # Every option of the schema the chain declares.
        **mitm_values(settings, known=opts),
    )
    if settings.tls_cert:
        # The privacy policy promises TLS 1.3: nothing older is offered (and `require_tls`
        # refuses plain HTTP: addons/edge.py).
        opts.update(
            certs=[f"*={Path(settings.tls_cert).resolve()}"],
            tls_version_client_min="TLS1_3",
        )
    return edge, reporter


async def start_edge(
    settings: Settings,
    services: EdgeServices,
    store: AssetStore | None,
    stack: contextlib.AsyncExitStack,
) -> tuple[tuple[str, int], asyncio.Task[None]]:
    """The edge listening: its address, and the task that runs it until `stack` stops it."""
    if not os.environ.get("NEXTAPI_UPSTREAM_KEY"):
        raise SystemExit("NEXTAPI_UPSTREAM_KEY is not set: the edge needs the upstream key")
    if store is not None:
        services.videos = video_delivery(settings, store)
        stack.push_async_callback(services.videos.aclose)
        origin = services.video_origin = VideoOrigin(store)
        origin_server = AppServer(origin.app, "127.0.0.1", 0)
        await origin_server.start()
        stack.push_async_callback(origin_server.stop)
        origin.address = (origin_server.host, origin_server.port)
    use_shared_port()  # a worker of --workers: the supervisor's port
    drain = Drain()
    edge, reporter = build_master(settings, services, drain)
    edge_task = asyncio.create_task(edge.run())
    stack.push_async_callback(stop_master, edge, edge_task, drain, settings.upstream_timeout)
    if os.environ.get(WORKER_ENV):
        collect = edge_metrics(services)
        metrics_file = MetricsFile(
            settings.data_dir / "metrics.json",
            lambda: (
                collect()
                | {
                    "nextapi_edge_requests_total": drain.handled,
                    "nextapi_edge_requests_in_flight": len(drain.in_flight),
                }
            ),
        )
        metrics_file.start()
        stack.push_async_callback(metrics_file.stop)
    await first(reporter.ready.wait(), edge_task, "the edge")
    if reporter.address is None:
        raise SystemExit(
            f"cannot start: the edge could not listen on {settings.listen} (see above); "
            "choose another address with --listen HOST:PORT"
        )
    return reporter.address, edge_task


def edge_metrics(services: EdgeServices) -> Callable[[], dict[str, int]]:
    def collect() -> dict[str, int]:
        values = {"nextapi_key_verifications_total": services.auth.verifications}
        if services.videos is not None:
            values["nextapi_video_copies_total"] = services.videos.copies
        if services.video_origin is not None:
            values["nextapi_video_streams_total"] = services.video_origin.streams
        spool = services.spool
        if spool is not None:
            values |= {
                f"nextapi_spool_{name}_total": value
                for name, value in vars(spool.stats).items()
                if isinstance(value, int)
            }
        return values

    return collect
