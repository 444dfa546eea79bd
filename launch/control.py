"""The control plane in a serving process: its SQLite state, the wallet, its jobs (stale holds,
webhook deliveries, retention, usage rollups) and its app on uvicorn; with role all, the edge in
the same process joins it directly. Imported only where the control plane runs: an edge apart
(each worker of --workers is one) never imports control/."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control.api.usage import store_usage
from control.app import create_app
from control.customers.analytics import ProductAnalytics
from control.customers.portal.oidc import RelyingParty
from control.customers.tokens import ClerkTokens
from control.jobs.delivery import Deliverer
from control.jobs.holds import HoldSweeper
from control.jobs.orphans import HoldTimes, OrphanFinder
from control.jobs.retention import Periods, Retention
from control.jobs.upstream import UpstreamTasks
from control.jobs.videos import VideoSweeper
from control.payments.stripeapi import StripeApi
from control.store.db import NewerSchema
from control.store.state import ControlState
from control.store.wallet import DatabaseWallet
from launch.serving import AppServer
from launch.settings import Settings, split_hostport
from launch.videos import video_store
from proxy.core.video_assets import AssetStore
from proxy.policy import Snapshot
from proxy.services import EdgeServices
from proxy.usage.ingest import SpoolIngestor
from proxy.usage.spool import Spool

log = logging.getLogger("nextapi")


@dataclass
class ControlPlane:
    state: ControlState
    wallet: DatabaseWallet
    holds: HoldSweeper
    app: Any  # the Starlette app: its state holds the outbox and the edges' reports
    url: str  # where it listens, as http://host:port


async def start_control(
    settings: Settings,
    stack: contextlib.AsyncExitStack,
    store: AssetStore | None,
    admin_token: str | None,
    metrics: Callable[[], dict[str, int]],
    *,
    edge_joins: bool,
) -> ControlPlane:
    """The control plane listening on `control_listen`, its jobs running; `stack` stops them.
    `edge_joins`: an edge in this process joins it (join_edge), which starts the hold sweep."""
    try:
        state = await ControlState.open(
            settings.data_dir,
            suspend_after_rate_limited=settings.suspend_after_rate_limited,
            catalog_file=Path(settings.catalog_file) if settings.catalog_file else None,
            database_url=settings.database_url or None,
        )
        stack.push_async_callback(state.close)
        await state.rollups.open()  # now, not at the first fold: a refusal stops the start
    except (NewerSchema, ConnectionError) as refused:  # a sentence (a URL without its password)
        raise SystemExit(str(refused)) from None
    await state.admin.bootstrap(admin_token)
    wallet = DatabaseWallet(state)
    upstream_tasks = _upstream_tasks(settings)
    if upstream_tasks is not None:
        stack.push_async_callback(upstream_tasks.aclose)
    holds = _hold_sweeper(settings, state, wallet, upstream_tasks)
    stack.push_async_callback(holds.stop)
    if not edge_joins:
        # Edges apart (role control, or the workers of --workers). With the edge in this
        # process: once its spool's backlog is in (join_edge).
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
    analytics = ProductAnalytics.from_env(state, settings.posthog_host)
    if analytics is not None:
        stack.callback(analytics.close)  # sends what is queued
    app = create_app(
        state,
        metrics=metrics,
        wallet=wallet,
        deliverer=deliverer,
        retention=retention,
        canceller=upstream_tasks,
        clerk_tokens=clerk_tokens(settings),
        analytics=analytics,
        admin_failures_per_minute=settings.admin_auth_failures_per_minute,
        stripe=StripeApi.from_env(),
    )
    await app.state.recharger.start()  # the auto-recharge worker, over the app's outbox
    stack.push_async_callback(app.state.recharger.stop)
    app.state.portal = portal_relying_party(settings)
    host, port = split_hostport(settings.control_listen, "control_listen")
    server = AppServer(app, host, port)
    await server.start()
    stack.push_async_callback(server.stop)
    stack.push_async_callback(state.release_waiters)  # runs first: the stack unwinds LIFO
    print(f"control listening on {server.host}:{server.port}", flush=True)
    url = f"http://{server.host}:{server.port}"
    return ControlPlane(state=state, wallet=wallet, holds=holds, app=app, url=url)


async def join_edge(
    plane: ControlPlane,
    services: EdgeServices,
    settings: Settings,
    stack: contextlib.AsyncExitStack,
) -> None:
    """Role all: the edge in this process reads policy, the wallet and the outbox directly, and
    its usage spool is ingested here; then stale holds are swept."""
    state = plane.state
    state.subscribe(lambda wire: services.policy.replace(Snapshot.from_wire(wire)))
    services.use_wallet(plane.wallet)
    services.use_events(plane.app.state.outbox)
    spool = Spool(settings.data_dir / "spool", flush_interval=settings.usage_flush_interval)
    await spool.start()
    stack.push_async_callback(spool.close)
    services.spool = spool
    plane.app.state.edges.local = services.report  # GET /v1/system lists this process's edge
    ingestor = SpoolIngestor(spool, lambda records: store_usage(state, records))
    await ingestor.start()  # replays the last run's records: their creates' assignments
    stack.push_async_callback(ingestor.stop)
    plane.holds.start()


def portal_relying_party(settings: Settings) -> RelyingParty | None:
    """The portal's OIDC client (None: no issuer set, and /portal/ says it is not configured);
    its secret from the environment only, like every secret."""
    if not settings.portal_oidc_issuer:
        return None
    if not settings.portal_oidc_client_id:
        raise SystemExit("portal_oidc_issuer is set: set portal_oidc_client_id too")
    secret = os.environ.get("NEXTAPI_PORTAL_OIDC_CLIENT_SECRET", "")
    if not secret:
        log.warning(
            "NEXTAPI_PORTAL_OIDC_CLIENT_SECRET is not set: the portal signs in as a public "
            "client (PKCE alone), which the provider must allow"
        )
    return RelyingParty(settings.portal_oidc_issuer, settings.portal_oidc_client_id, secret)


def _upstream_tasks(settings: Settings) -> UpstreamTasks | None:
    """What cancels a closed org's queued tasks upstream and lists the tasks of creates no edge
    answered (needs the upstream key)."""
    api_key = os.environ.get("NEXTAPI_UPSTREAM_KEY")
    if not api_key:
        log.warning(
            "NEXTAPI_UPSTREAM_KEY is not set: closing an org cannot cancel its tasks, and the "
            "tasks of creates an edge never answered cannot be found and charged"
        )
        return None
    return UpstreamTasks(settings.upstream, api_key)


def _hold_sweeper(
    settings: Settings, state: ControlState, wallet: DatabaseWallet, upstream: UpstreamTasks | None
) -> HoldSweeper:
    """Releases holds whose creates never answered, every hold_sweep_interval, once the
    upstream's tasks of such creates are charged."""
    times = HoldTimes(
        stale_after=settings.hold_seconds,
        create_seconds=settings.upstream_timeout,
        give_up_after=settings.hold_max_seconds,
    )
    finder = None if upstream is None else OrphanFinder(state, upstream, times, wallet.clock)
    return HoldSweeper(wallet, settings.hold_sweep_interval, times=times, finder=finder)


def retention_periods(settings: Settings) -> Periods:
    return Periods(
        api_logs_days=settings.retention_api_logs_days,
        billing_days=settings.retention_billing_days,
        closed_account_days=settings.retention_closed_account_days,
        security_events_days=settings.retention_security_events_days,
    )


async def purge(settings: Settings, dry_run: bool) -> None:
    """`run_proxy.py purge [--dry-run]`: one retention pass, printing what it deletes."""
    state = await ControlState.open(settings.data_dir, database_url=settings.database_url or None)
    store = video_store(settings)
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


def clerk_tokens(settings: Settings) -> ClerkTokens | None:
    """What verifies customers' Clerk session tokens, if the customer API is configured."""
    if not (settings.clerk_jwks_url or settings.clerk_jwt_key):
        return None
    try:
        return ClerkTokens(
            tuple(settings.clerk_authorized_parties),
            jwks_url=settings.clerk_jwks_url,
            public_key_pem=settings.clerk_jwt_key,
        )
    except ValueError as exc:
        raise SystemExit(f"cannot start the customer API: {exc}") from None
