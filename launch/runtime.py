"""Assembles a serving process by its role, on one asyncio loop: the control plane (all,
control), the edge's mitmproxy master (all, edge), or the supervisor of --workers beside the
control plane; with --demo, the Seedance simulator as the upstream and a demo org."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from functools import partial
from typing import TYPE_CHECKING

from addons.callback_ingress import listen_address
from launch.addresses import cannot_listen, check_addresses
from launch.edge import edge_metrics, start_edge
from launch.masters import first
from launch.settings import Settings, worker_count
from launch.videos import video_store
from launch.workers import WORKER_ENV, Supervisor
from proxy.apart import EdgeApart
from proxy.services import EdgeConfig, EdgeServices

if TYPE_CHECKING:
    from launch.control import ControlPlane


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
    check_addresses(settings, edge=supervisor is None and not os.environ.get(WORKER_ENV))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if supervisor is not None and not os.environ.get(settings.admin_token_env):
        # The workers present it to the control plane (policy, usage, the wallet).
        os.environ[settings.admin_token_env] = "nat_workers_" + secrets.token_urlsafe(24)
    admin_token = os.environ.get(settings.admin_token_env) or None

    demo_stripe = None  # the demo's Stripe simulator, when it runs one
    if settings.demo:
        # The demo's webhook receivers are on this machine: let deliveries reach loopback.
        os.environ.setdefault("NEXTAPI_WEBHOOK_ALLOW_PRIVATE", "1")
        admin_token = admin_token or "nat_demo_" + secrets.token_urlsafe(24)
        os.environ[settings.admin_token_env] = admin_token
        from launch.demo import start_demo_simulator, start_demo_stripe

        await start_demo_simulator(settings, stack)
        demo_stripe = await start_demo_stripe(stack)

    store = video_store(settings)
    if store is not None:
        stack.push_async_callback(store.aclose)

    services = edge_services(settings)
    stack.push_async_callback(services.aclose)
    plane: ControlPlane | None = None

    if settings.role in ("all", "control"):
        # Imported here: an edge apart, each worker of --workers among them, never loads control/.
        from launch.control import start_control

        metrics = supervisor.metrics if supervisor is not None else edge_metrics(services)
        joins = settings.role == "all" and supervisor is None
        plane = await start_control(settings, stack, store, admin_token, metrics, edge_joins=joins)
        settings.control_url = settings.control_url or plane.url

    if supervisor is not None:
        await supervisor.run(settings.control_url, stop)
        return

    if settings.role == "all":
        from launch.control import join_edge

        assert plane is not None
        await join_edge(plane, services, settings, stack)
    elif settings.role == "edge":
        apart = EdgeApart(
            services,
            settings.control_url,
            admin_token or "",
            settings.data_dir,
            snapshot_max_age=settings.snapshot_max_age_hours * 3600,
            flush_interval=settings.usage_flush_interval,
        )
        await apart.start()
        stack.push_async_callback(apart.stop)  # after the edge stops: the stack unwinds LIFO

    if settings.role in ("all", "edge"):
        address, edge_task = await start_edge(settings, services, store, stack)
        if settings.demo:
            assert admin_token is not None
            from launch.demo import create_demo_data

            await create_demo_data(settings.control_url, admin_token, address, demo_stripe)
        await first(stop.wait(), edge_task, "the edge")
    else:
        await stop.wait()


def edge_services(settings: Settings) -> EdgeServices:
    """The edge's services, configured whole from the settings (a control plane alone has them
    too: its metrics read them); the upstream key is checked where the edge starts."""
    services = EdgeServices()
    if settings.role == "control" or not os.environ.get("NEXTAPI_UPSTREAM_KEY"):
        return services
    config = EdgeConfig.from_values(
        partial(getattr, settings), upstream=settings.upstream, apart=settings.role == "edge"
    )
    services.configure(config, listen_address=listen_address)
    return services
