"""Assembles `run_proxy.py dev`: the dev CA and bundle, the simulator (the default target), the
mitmproxy master with the dev addons, and, after `--`, the developer's command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from mitmproxy import certs, master, options
from mitmproxy.addons import dns_resolver, next_layer, proxyserver, tlsconfig

from addons.devmode import cassette, trust
from addons.devmode.callback_catcher import DevCallbacks
from addons.devmode.callback_relay import CallbackRelay, Delivery, load_secret
from addons.devmode.guard import SeedanceGuard
from addons.devmode.intercept import InterceptHosts
from addons.devmode.recorder import Recorder
from addons.devmode.replayer import Replayer
from addons.devmode.router import TargetRouter
from addons.devmode.settings import DevSettings, DevUsageError, parse
from addons.devmode.tail import Tail
from addons.devmode.targets import banner
from launch.masters import ListenReporter, first, stop_master
from launch.simulator import start_simulator
from simulator.config import SimulatorConfig

log = logging.getLogger("nextapi.dev")


def ensure_ca(confdir: Path) -> Path:
    """The dev CA of this data dir, made on first use by mitmproxy's own cert store (the same
    files mitmproxy reads when it starts with this confdir)."""
    confdir.mkdir(parents=True, exist_ok=True)
    certs.CertStore.from_store(confdir, "mitmproxy", 2048)
    return confdir / trust.CA_CERT_FILE


class DevListening(ListenReporter):
    """Prints where the dev proxy listens (or that it intercepts, in local mode), and keeps the
    WireGuard client's configuration with the port it got."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.wireguard_conf: str | None = None

    def listening(self, server: Any) -> None:
        if self.mode == "local":
            print("dev proxy intercepting local processes (mitmproxy local mode)", flush=True)
            return
        assert self.address is not None
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        kind = "dev proxy (wireguard, udp)" if self.mode == "wireguard" else "dev proxy"
        print(f"{kind} listening on {shown}:{port}", flush=True)
        if self.mode == "wireguard":
            instance = next(iter(server.servers))
            self.wireguard_conf = wireguard_client_conf(instance.client_conf(), port)

    def refusal(self) -> str:
        """Why the mode could not start, for the developer."""
        refusal = f"the {self.mode} mode could not start: {self.failure}"
        if self.mode == "local":
            refusal += (
                "\n(on Linux it needs root, Linux >= 6.8, cgroup v2 at /sys/fs/cgroup and"
                " sudo on PATH; see docs/developers/dev-proxy.md, Modes)"
            )
        return refusal


def wireguard_client_conf(conf: str | None, port: int) -> str | None:
    """mitmproxy writes the port it was asked for (0 for "any") into the peer's Endpoint; the
    client needs the port it got."""
    if conf is None:
        return None
    lines = []
    for line in conf.splitlines():
        if line.startswith("Endpoint = "):
            host = line.removeprefix("Endpoint = ").rsplit(":", 1)[0]
            line = f"Endpoint = {host}:{port}"
        lines.append(line)
    return "\n".join(lines)


def child_env(settings: DevSettings, proxy_url: str, bundle: Path) -> dict[str, str]:
    """What a program needs to go through the proxy: proxy settings in regular mode; only the
    CA in local and wireguard modes (their traffic is captured without proxy settings)."""
    if settings.mode == "regular":
        return trust.proxy_env(proxy_url, bundle)
    return trust.ca_env(bundle)


def _mode(settings: DevSettings) -> list[str]:
    if settings.mode == "local":
        return [f"local:{settings.local_processes}" if settings.local_processes else "local"]
    if settings.mode == "wireguard":
        return [f"wireguard@{settings.listen_host}:{settings.listen_port}"]
    return ["regular"]


def build_master(
    settings: DevSettings, target_url: str, relay: CallbackRelay
) -> tuple[master.Master, DevListening]:
    opts = options.Options()
    dev = master.Master(opts)
    reporter = DevListening(settings.mode)
    dev.addons.add(
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        dns_resolver.DnsResolver(),
        InterceptHosts(),
        Replayer(),
        DevCallbacks(relay, target_url),
        TargetRouter(),
        SeedanceGuard(),
        Recorder(),
        Tail(),
        reporter,
    )
    opts.update(
        mode=_mode(settings),
        listen_host=settings.listen_host,
        listen_port=settings.listen_port,
        # Lazy: no connection to the app's host before the request is routed (a caught call
        # never touches the real Seedance host); no upstream certificate sniffing either.
        connection_strategy="lazy",
        upstream_cert=False,
        confdir=str(settings.dev_dir / "mitmproxy"),
        dev_intercept_hosts=",".join(settings.intercept),
        dev_target=target_url,
        dev_target_is_sim=settings.target.is_sim,
        dev_target_key=settings.key or "",
        dev_replay=str(settings.replay or ""),
        dev_replay_miss=settings.replay_miss,
        dev_record=str(settings.record or ""),
        dev_forward_callbacks_to=settings.forward_callbacks_to or "",
        dev_tail_json=settings.json_tail,
        dev_tail_bodies=settings.bodies,
    )
    return dev, reporter


def _print_delivery(settings: DevSettings) -> Any:
    def show(delivery: Delivery) -> None:
        if settings.json_tail:
            record = {
                "callback": delivery.status,
                "task_id": delivery.task_id,
                "url": delivery.url,
                "http_status": delivery.http_status,
            }
            print(json.dumps(record, separators=(",", ":")), flush=True)
        else:
            answer = delivery.http_status or "not delivered"
            line = f"callback {delivery.task_id} {delivery.status} → {delivery.url} {answer}"
            print(line, flush=True)

    return show


def _simulator_config(settings: DevSettings) -> SimulatorConfig:
    return SimulatorConfig(
        queued_seconds=settings.queued_seconds,
        running_seconds=settings.running_seconds,
        error_rate=settings.fail_rate,
        latency_ms=settings.latency_ms,
        fixed_status=settings.force_status,
    )


async def run(settings: DevSettings) -> int:
    dev_dir = settings.dev_dir
    dev_dir.mkdir(parents=True, exist_ok=True)
    bundle = trust.write_bundle(ensure_ca(dev_dir / "mitmproxy"), dev_dir / trust.BUNDLE_FILE)
    if settings.env_only:
        print(trust.export_lines(child_env(settings, settings.proxy_url, bundle)))
        return 0
    if settings.replay is not None:
        cassette.load(settings.replay)  # refused before anything starts, naming file and line

    print(banner(settings.target, settings.key, settings.intercept[:2]), flush=True)
    if not settings.loopback_only and settings.mode != "local":
        print(
            f"warning: listening on {settings.listen_host}, not loopback: anyone who can reach "
            "this address can use the proxy",
            file=sys.stderr,
            flush=True,
        )

    stack = contextlib.AsyncExitStack()
    async with stack:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        if settings.target.is_sim:
            need_sim = settings.replay is None or settings.replay_miss == "target"
            sim = await start_simulator(_simulator_config(settings)) if need_sim else None
            if sim is not None:
                stack.push_async_callback(sim.stop)
            # Replay alone starts no simulator: nothing is routed (misses are 501s, and the
            # guard would refuse anything else).
            target_url = f"http://{sim.host}:{sim.port}" if sim else ""
        else:
            assert settings.target.url is not None
            target_url = settings.target.url

        secret = load_secret(dev_dir)
        relay = CallbackRelay(secret, _print_delivery(settings))
        stack.push_async_callback(relay.close)

        dev, reporter = build_master(settings, target_url, relay)
        task = asyncio.create_task(dev.run())
        stack.push_async_callback(stop_master, dev, task)
        await first(reporter.ready.wait(), task, "the dev proxy")
        if reporter.failure is not None:
            print(f"dev: {reporter.refusal()}", file=sys.stderr, flush=True)
            return 1
        print(f"ca bundle: {bundle.resolve()}", flush=True)
        print(f"callback secret: {secret}", flush=True)
        if reporter.wireguard_conf:
            conf = dev_dir / "wireguard-client.conf"
            conf.write_text(reporter.wireguard_conf + "\n", encoding="utf-8")
            conf.chmod(0o600)
            print(f"wireguard client config: {conf.resolve()}", flush=True)

        if settings.command:
            proxy_url = settings.proxy_url
            if reporter.address is not None:
                host, port = reporter.address
                if host in ("", "0.0.0.0", "::"):
                    host = "127.0.0.1"
                proxy_url = "http://" + (f"[{host}]" if ":" in host else host) + f":{port}"
            env = child_env(settings, proxy_url, bundle)
            return await _run_command(settings.command, env, stop, task)
        await first(stop.wait(), task, "the dev proxy")
        return 0


async def _run_command(
    command: list[str], env: dict[str, str], stop: asyncio.Event, task: asyncio.Task[None]
) -> int:
    try:
        child = await asyncio.create_subprocess_exec(*command, env={**os.environ, **env})
    except OSError as exc:
        print(f"dev: cannot run {command[0]!r}: {exc}", file=sys.stderr, flush=True)
        return 127
    waiter = asyncio.ensure_future(child.wait())
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiter, stopper, task}, return_when=asyncio.FIRST_COMPLETED)
    if not waiter.done():
        with contextlib.suppress(ProcessLookupError):
            child.terminate()
        await waiter
    stopper.cancel()
    return child.returncode if child.returncode is not None else 1


def main(argv: list[str]) -> int:
    """`run_proxy.py dev …`; returns the exit status (the command's, after `--`)."""
    try:
        settings = parse(argv)
    except DevUsageError as exc:
        print(f"dev: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return asyncio.run(run(settings))
    except cassette.CassetteError as exc:
        print(f"dev: corrupt cassette refused: {exc}", file=sys.stderr)
        return 2
    except DevUsageError as exc:
        print(f"dev: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
