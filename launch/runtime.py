"""Assembles the process: the mitmproxy master with the edge's addon chain, the control plane on
uvicorn, and, with --demo, the Seedance simulator, all on one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mitmproxy import master, options
from mitmproxy.addons import next_layer, proxyserver, tlsconfig

from addons.drain import Drain
from addons.gateway import chain
from addons.standalone import Standalone
from launch.addresses import cannot_listen, check_addresses
from launch.dispatch import DirectAddonManager
from launch.masters import ListenReporter, first, stop_master
from launch.optimized import reexec_optimized
from launch.serving import AppServer
from launch.settings import Settings, connection_timeouts, load, split_hostport, worker_count
from launch.workers import WORKER_ENV, MetricsFile, Supervisor, use_shared_port
from proxy.descriptors import DescriptorExhaustionLog, raise_open_files_limit
from proxy.policy import Snapshot
from proxy.services import EdgeServices
from proxy.usage.ingest import SpoolIngestor
from proxy.usage.spool import Spool
from proxy.videos.assets import AssetStore
from proxy.videos.delivery import VideoDelivery
from proxy.videos.links import VideoLinks
from proxy.videos.links import derive_secret as derive_link_secret
from proxy.videos.origin import VideoOrigin
from proxy.videos.stores import open_store

if TYPE_CHECKING:
    from control.jobs.holds import HoldSweeper
    from control.jobs.upstream import UpstreamTasks
    from control.store.state import ControlState
    from control.store.wallet import SqliteWallet

log = logging.getLogger("nextapi")


class EdgeListening(ListenReporter):
    """Prints the edge's bound address once mitmproxy listens (none: it could not, it logged
    why, and _serve stops)."""

    def listening(self, server: Any) -> None:
        if self.address is not None:
            host, port = self.address
            print(f"edge listening on {host}:{port}", flush=True)


class _MitmproxyTlsProbeNoise(logging.Filter):
    """mitmproxy 12.2 probes every TLS version when a TLS option changes, and pyOpenSSL 26
    raises for SSL3 where older releases returned; the probe only feeds a warning, so the
    traceback it logs at start-up is noise, not a failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        tb = record.exc_info[2] if record.exc_info else None
        while tb is not None:
            if tb.tb_frame.f_code.co_name == "_warn_unsupported_version":
                return False
            tb = tb.tb_next
        return True


def build_master(
    settings: Settings, services: EdgeServices, extra: list[object], drain: Drain | None = None
) -> tuple[master.Master, EdgeListening]:
    """A master with only the addons a reverse proxy needs, then the gateway's chain."""
    host, port = split_hostport(settings.listen, "listen")
    opts = options.Options()
    edge = master.Master(opts)
    edge.addons = DirectAddonManager(edge)  # only the addons that handle an event see it
    reporter = EdgeListening()
    edge.addons.add(
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        *extra,
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
        nextapi_max_body_bytes=settings.max_body_bytes,
        nextapi_trusted_proxies=",".join(settings.trusted_proxies),
        nextapi_upstream_timeout=settings.upstream_timeout,
        nextapi_upstream_connect_timeout=settings.upstream_connect_timeout,
        # Client connections (addons/connections.py): HTTP/1.1 only, so that every client is
        # read by the guarded layer; mitmproxy's inactivity timeout only backs its limits up.
        http2=False,
        nextapi_request_header_timeout=settings.request_header_timeout,
        nextapi_request_body_timeout=settings.request_body_timeout,
        nextapi_keepalive_timeout=settings.keepalive_timeout,
        tcp_timeout=max(connection_timeouts(settings)),
        nextapi_max_request_line_bytes=settings.max_request_line_bytes,
        nextapi_max_header_bytes=settings.max_header_bytes,
        nextapi_max_header_fields=settings.max_header_fields,
        nextapi_max_connections_per_address=settings.max_connections_per_address,
        nextapi_default_limits=json.dumps(settings.default_rate_limit),
        nextapi_model_limits=json.dumps(settings.model_limits),
        nextapi_upstream_concurrent_tasks=settings.upstream_concurrent_tasks,
        nextapi_reconcile_interval=settings.reconcile_interval,
        nextapi_public_url=settings.public_url,
        nextapi_auth_failures_per_ip=settings.auth_failures_per_ip_per_minute,
        nextapi_wrong_secrets_per_key=settings.wrong_secrets_per_key_per_minute,
        nextapi_wrong_secrets_per_key_ceiling=settings.wrong_secrets_per_key_ceiling_per_minute,
        nextapi_video_chunk_bytes=settings.video_chunk_bytes,
        # mitmproxy keeps its own CA here rather than in the home directory.
        confdir=str(settings.data_dir / "mitmproxy"),
    )
    if settings.tls_cert:
        # The privacy policy promises TLS 1.3: nothing older is offered, and plain HTTP is
        # refused (addons/edge.py).
        opts.update(
            certs=[f"*={Path(settings.tls_cert).resolve()}"],
            tls_version_client_min="TLS1_3",
            nextapi_require_tls=True,
        )
    return edge, reporter


async def run(settings: Settings, argv: list[str] | None = None) -> None:
    stack = contextlib.AsyncExitStack()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    supervisor = None
    if worker_count(settings) > 1:
        try:
            supervisor = Supervisor(settings, argv or [])
        except OSError as exc:
            raise SystemExit(cannot_listen("the edge", "--listen", settings.listen, exc)) from None
        stack.callback(supervisor.sock.close)
    try:
        await _serve(settings, stack, stop, supervisor)
    finally:
        await stack.aclose()


async def _serve(
    settings: Settings,
    stack: contextlib.AsyncExitStack,
    stop: asyncio.Event,
    supervisor: Supervisor | None = None,
) -> None:
    from control.api.usage import store_usage
    from control.app import create_app
    from control.jobs.delivery import Deliverer
    from control.jobs.retention import Retention
    from control.jobs.videos import VideoSweeper
    from control.store.state import ControlState
    from control.store.wallet import SqliteWallet

    check_addresses(settings, edge=supervisor is None and not os.environ.get(WORKER_ENV))
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    if supervisor is not None and not os.environ.get(settings.admin_token_env):
        # The workers present it to the control plane (policy, usage, the wallet).
        os.environ[settings.admin_token_env] = "nat_workers_" + secrets.token_urlsafe(24)
    admin_token = os.environ.get(settings.admin_token_env) or None

    if settings.demo:
        # The demo's webhook receivers are on this machine: let deliveries reach loopback.
        os.environ.setdefault("NEXTAPI_WEBHOOK_ALLOW_PRIVATE", "1")
        admin_token = admin_token or "nat_demo_" + secrets.token_urlsafe(24)
        os.environ[settings.admin_token_env] = admin_token
        from launch.demo import start_demo_simulator

        await start_demo_simulator(settings, stack)

    store = _video_store(settings)
    if store is not None:
        stack.push_async_callback(store.aclose)

    services = EdgeServices()
    stack.callback(services.auth.close)
    if settings.redis_url:
        services.use_redis(
            settings.redis_url, prefix=settings.redis_prefix, failure=settings.redis_failure
        )
    stack.push_async_callback(lambda: services.counters.close())
    extra: list[object] = []
    state: ControlState | None = None

    if settings.role in ("all", "control"):
        state = await ControlState.open(
            data_dir,
            suspend_after_rate_limited=settings.suspend_after_rate_limited,
            catalog_file=Path(settings.catalog_file) if settings.catalog_file else None,
        )
        stack.push_async_callback(state.close)
        await state.admin.bootstrap(admin_token)
        wallet = SqliteWallet(state)
        upstream_tasks = _upstream_tasks(settings)
        if upstream_tasks is not None:
            stack.push_async_callback(upstream_tasks.aclose)
        holds = _hold_sweeper(settings, state, wallet, upstream_tasks)
        stack.push_async_callback(holds.stop)
        if settings.role == "control":
            # With the edge in this process, once its spool's backlog is in (below).
            holds.start()
        deliverer = Deliverer(state)
        await deliverer.start()
        stack.push_async_callback(deliverer.stop)
        sweeper = VideoSweeper(state, store) if store is not None else None
        retention = Retention(state, retention_periods(settings), videos=sweeper)
        retention.start(settings.retention_interval_hours * 3600)
        stack.push_async_callback(retention.stop)
        # Usage rollups (control/aggregates/rollup.py) catch up every rollup_interval seconds
        # (default a minute), off the ingest path.
        state.rollups.start(settings.rollup_interval)
        stack.push_async_callback(state.rollups.stop)
        app = create_app(
            state,
            metrics=supervisor.metrics if supervisor is not None else _metrics(services),
            wallet=wallet,
            deliverer=deliverer,
            retention=retention,
            canceller=upstream_tasks,
        )
        host, port = split_hostport(settings.control_listen, "control_listen")
        control = AppServer(app, host, port)
        await control.start()
        stack.push_async_callback(control.stop)
        stack.push_async_callback(state.release_waiters)  # runs first: the stack unwinds LIFO
        print(f"control listening on {control.host}:{control.port}", flush=True)
        settings.control_url = settings.control_url or f"http://{control.host}:{control.port}"

    if supervisor is not None:
        await supervisor.run(settings.control_url, stop)
        return

    if settings.role == "all":
        assert state is not None
        embedded = state
        state.subscribe(lambda wire: services.policy.replace(Snapshot.from_wire(wire)))
        services.use_wallet(wallet)
        services.use_events(app.state.outbox)
        spool = Spool(data_dir / "spool", flush_interval=settings.usage_flush_interval)
        await spool.start()
        stack.push_async_callback(spool.close)
        services.spool = spool
        app.state.edges.local = services.report  # GET /v1/system lists this process's edge
        ingestor = SpoolIngestor(spool, lambda records: store_usage(embedded, records))
        await ingestor.start()  # replays the last run's records: their creates' assignments
        stack.push_async_callback(ingestor.stop)
        holds.start()
    elif settings.role == "edge":
        extra.append(Standalone(services))

    if settings.role in ("all", "edge"):
        if not os.environ.get("NEXTAPI_UPSTREAM_KEY"):
            raise SystemExit("NEXTAPI_UPSTREAM_KEY is not set: the edge needs the upstream key")
        if store is not None:
            services.videos = _video_delivery(settings, store)
            stack.push_async_callback(services.videos.aclose)
            origin = services.video_origin = VideoOrigin(store)
            origin_server = AppServer(origin.app, "127.0.0.1", 0)
            await origin_server.start()
            stack.push_async_callback(origin_server.stop)
            origin.address = (origin_server.host, origin_server.port)
        use_shared_port()  # a worker of --workers: the supervisor's port
        drain = Drain()
        edge, reporter = build_master(settings, services, extra, drain)
        if settings.role == "edge":
            edge.options.update(
                nextapi_control_url=settings.control_url,
                nextapi_token_env=settings.admin_token_env,
                nextapi_data_dir=str(data_dir),
                nextapi_usage_flush_interval=settings.usage_flush_interval,
                nextapi_snapshot_max_age_hours=settings.snapshot_max_age_hours,
            )
        edge_task = asyncio.create_task(edge.run())
        stack.push_async_callback(stop_master, edge, edge_task, drain, settings.upstream_timeout)
        if os.environ.get(WORKER_ENV):
            collect = _metrics(services)
            metrics_file = MetricsFile(
                data_dir / "metrics.json",
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
        if settings.demo:
            assert reporter.address is not None and admin_token is not None
            from launch.demo import create_demo_data

            await create_demo_data(settings.control_url, admin_token, reporter.address)
        await first(stop.wait(), edge_task, "the edge")
    else:
        await stop.wait()


def _video_store(settings: Settings) -> AssetStore | None:
    """One store for the edge's copies and the control plane's purges: an edge apart keeps
    none unless given one the control plane shares."""
    default = None if settings.role == "edge" else settings.data_dir / "videos"
    try:
        return open_store(settings.video_store, default, os.environ)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def _video_delivery(settings: Settings, store: AssetStore) -> VideoDelivery:
    if not settings.public_url:
        log.warning("no public_url: videos are not copied, the upstream's 24-hour links pass on")
    material = os.environ.get("NEXTAPI_VIDEO_LINK_SECRET") or os.environ["NEXTAPI_UPSTREAM_KEY"]
    return VideoDelivery(
        store,
        VideoLinks(derive_link_secret(material)),
        link_ttl=settings.video_link_hours * 3600,
        max_bytes=settings.video_max_bytes,
    )


def _upstream_tasks(settings: Settings) -> UpstreamTasks | None:
    """What cancels a closed org's queued tasks upstream and lists the tasks of creates no edge
    answered (needs the upstream key)."""
    from control.jobs.upstream import UpstreamTasks

    api_key = os.environ.get("NEXTAPI_UPSTREAM_KEY")
    if not api_key:
        log.warning(
            "NEXTAPI_UPSTREAM_KEY is not set: closing an org cannot cancel its tasks, and the "
            "tasks of creates an edge never answered cannot be found and charged"
        )
        return None
    return UpstreamTasks(settings.upstream, api_key)


def _hold_sweeper(
    settings: Settings, state: ControlState, wallet: SqliteWallet, upstream: UpstreamTasks | None
) -> HoldSweeper:
    """Releases holds whose creates never answered, every hold_sweep_interval, once the
    upstream's tasks of such creates are charged."""
    from control.jobs.holds import HoldSweeper
    from control.jobs.orphans import HoldTimes, OrphanFinder

    times = HoldTimes(
        stale_after=settings.hold_seconds,
        create_seconds=settings.upstream_timeout,
        give_up_after=settings.hold_max_seconds,
    )
    finder = None if upstream is None else OrphanFinder(state, upstream, times, wallet.clock)
    return HoldSweeper(wallet, settings.hold_sweep_interval, times=times, finder=finder)


def _metrics(services: EdgeServices) -> Callable[[], dict[str, int]]:
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


def retention_periods(settings: Settings) -> Any:
    from control.jobs.retention import Periods

    return Periods(
        api_logs_days=settings.retention_api_logs_days,
        billing_days=settings.retention_billing_days,
        closed_account_days=settings.retention_closed_account_days,
        security_events_days=settings.retention_security_events_days,
    )


async def purge(settings: Settings, dry_run: bool) -> None:
    """`run_proxy.py purge [--dry-run]`: one retention pass, printing what it deletes."""
    from control.jobs.retention import Retention
    from control.jobs.videos import VideoSweeper
    from control.store.state import ControlState

    state = await ControlState.open(settings.data_dir)
    store = _video_store(settings)
    sweeper = VideoSweeper(state, store) if store is not None else None
    try:
        report = await Retention(state, retention_periods(settings), videos=sweeper).purge(
            dry_run=dry_run
        )
    finally:
        await state.close()
        if store is not None:
            await store.aclose()
    verb = "would delete" if dry_run else "deleted"
    for line in report.lines():
        print(f"{verb} {line}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["dev"]:
        from launch.dev import main as dev_main

        sys.exit(dev_main(argv[1:]))
    if argv[:1] == ["purge"]:
        dry_run = "--dry-run" in argv
        settings = load([a for a in argv[1:] if a != "--dry-run"])
        asyncio.run(purge(settings, dry_run))
        return
    settings = load(argv)
    reexec_optimized(argv)  # a no-op when run_proxy.py did it (tests' entries do not)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(DescriptorExhaustionLog())
    log.info("open files limit: %d", raise_open_files_limit())
    # mitmproxy's own per-connection chatter is noise at the edge.
    for noisy in ("mitmproxy", "uvicorn", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("mitmproxy.addonmanager").addFilter(_MitmproxyTlsProbeNoise())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings, argv))
