"""`--workers N`: N edge processes on one listening port, beside one control plane.

The port is shared with `SO_REUSEPORT`: the supervisor (this process) binds it first without
listening (so port 0 resolves once, and a port already taken fails at once), and every worker
binds and listens on it with the same option. The kernel then spreads new connections evenly
over the workers' queues by a hash of their addresses. A socket bound once and inherited would
have one queue that every worker's event loop wakes on, and asyncio accepts a whole burst in
one go: one worker would take most of a burst of new connections and the other sit idle. The
price of `SO_REUSEPORT`: connections still queued at a worker that dies or closes its socket are
reset rather than taken over (a client sees the same as for a request in flight at a crash).

The supervisor runs the control plane; each worker is `run_proxy.py --role edge` against it, with
its own spool under `<data_dir>/workers/<n>`, and counts in Redis (required for N > 1). A worker
that exits unasked is started again on the same directory, which ships what its spool held.
SIGTERM: the supervisor sends SIGTERM to every worker, which stops accepting, answers what is in
flight, ships its usage and exits; then the control plane stops. Each worker writes its counters
to `metrics.json` in its directory; the control plane's `/metrics` sums them (and keeps the
totals of a worker's earlier lives).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from launch.serving import bind
from launch.settings import Settings, split_hostport, worker_count

log = logging.getLogger("nextapi.workers")
RUN_PROXY = Path(__file__).resolve().parent.parent / "run_proxy.py"
REUSEPORT_ENV = "NEXTAPI_LISTEN_REUSEPORT"
WORKER_ENV = "NEXTAPI_WORKER_ID"
METRICS_FILE = "metrics.json"
RESTART_DELAY = 0.5  # seconds before a dead worker is started again (no tight crash loop)


def reserve_port(listen: str) -> socket.socket:
    """The supervisor's hold on the port: bound, never listening (so given no connection)."""
    host, port = split_hostport(listen, "listen")
    return bind(host, port, reuse_port=True, backlog=None)


def use_shared_port() -> None:
    """In a worker: mitmproxy's TCP servers listen on the supervisor's port with SO_REUSEPORT."""
    where = os.environ.get(REUSEPORT_ENV)
    if not where:
        return
    from mitmproxy.proxy import mode_servers

    host, port = split_hostport(where, REUSEPORT_ENV)

    async def listen(self: mode_servers.AsyncioServerInstance, _host: str, _port: int) -> list:
        sock = bind(host, port, reuse_port=True, backlog=1024)
        return [await asyncio.start_server(self.handle_stream, sock=sock, backlog=1024)]

    mode_servers.AsyncioServerInstance.listen = listen  # type: ignore[method-assign,assignment]


class MetricsFile:
    """In a worker: its counters, rewritten every half second for the supervisor to sum."""

    def __init__(self, path: Path, collect: Callable[[], dict[str, int]]) -> None:
        self.path, self.collect = path, collect
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.write()
            await asyncio.sleep(0.5)

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.collect()))
        os.replace(tmp, self.path)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.write()  # the final counts


class Worker:
    def __init__(self, number: int, data_dir: Path) -> None:
        self.number = number
        self.data_dir = data_dir
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = asyncio.Event()
        self.restarts = 0
        self.retired: dict[str, int] = {}  # counters of this worker's earlier lives

    def read_metrics(self) -> dict[str, int]:
        try:
            return json.loads((self.data_dir / METRICS_FILE).read_text())
        except (OSError, ValueError):
            return {}


class Supervisor:
    def __init__(self, settings: Settings, argv: list[str]) -> None:
        self.settings = settings
        self.argv = argv
        self.count = worker_count(settings)
        self.sock = reserve_port(settings.listen)
        self.workers = [
            Worker(n, settings.data_dir / "workers" / str(n)) for n in range(1, self.count + 1)
        ]
        self.stopping = False

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return host, port

    def metrics(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for worker in self.workers:
            for source in (worker.retired, worker.read_metrics()):
                for name, value in source.items():
                    total[name] = total.get(name, 0) + value
        total["nextapi_workers"] = sum(1 for w in self.workers if w.ready.is_set())
        total["nextapi_worker_restarts_total"] = sum(w.restarts for w in self.workers)
        return total

    async def run(self, control_url: str, stop: asyncio.Event) -> None:
        watchers = [asyncio.create_task(self._keep(w, control_url)) for w in self.workers]
        try:
            ready = asyncio.gather(*(w.ready.wait() for w in self.workers))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not stop.is_set():
                host, port = self.address
                print(f"edge listening on {host}:{port}", flush=True)
                print(f"workers: {self.count}", flush=True)
            await stopped
        finally:
            await self._stop_all(watchers)

    async def _keep(self, worker: Worker, control_url: str) -> None:
        """Runs a worker, and runs it again whenever it exits unasked."""
        while not self.stopping:
            worker.data_dir.mkdir(parents=True, exist_ok=True)
            proc = worker.proc = await self._spawn(worker, control_url)
            if self.stopping:  # asked to stop while this one was starting
                proc.send_signal(signal.SIGTERM)
            print(f"worker {worker.number} pid {proc.pid}", flush=True)
            forward = asyncio.create_task(self._forward(worker, proc))
            code = await proc.wait()
            await forward
            worker.ready.clear()
            if self.stopping:
                return
            for name, value in worker.read_metrics().items():
                worker.retired[name] = worker.retired.get(name, 0) + value
            with contextlib.suppress(OSError):
                (worker.data_dir / METRICS_FILE).unlink()
            worker.restarts += 1
            log.warning("worker %d (pid %d) exited (%s); restarting", worker.number, proc.pid, code)
            await asyncio.sleep(RESTART_DELAY)

    async def _spawn(self, worker: Worker, control_url: str) -> asyncio.subprocess.Process:
        host, port = self.address
        env = {
            **os.environ,
            REUSEPORT_ENV: f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
            WORKER_ENV: str(worker.number),
            "PYTHONUNBUFFERED": "1",
        }
        if not self.settings.video_store:
            # The workers and the control plane share the one directory of video copies.
            env["NEXTAPI_VIDEO_STORE"] = str(self.settings.data_dir / "videos")
        args = [
            *self.argv,
            "--workers",
            "1",
            "--role",
            "edge",
            "--control-url",
            control_url,
            "--data-dir",
            str(worker.data_dir),
        ]
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(RUN_PROXY),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
        )

    async def _forward(self, worker: Worker, proc: asyncio.subprocess.Process) -> None:
        """A worker's output, each line marked with its number; its readiness noted."""
        assert proc.stdout is not None
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith("edge listening on "):
                worker.ready.set()
                continue  # the supervisor prints the address once, when all are ready
            print(f"worker {worker.number}: {line}", flush=True)

    async def _stop_all(self, watchers: list[asyncio.Task[None]]) -> None:
        self.stopping = True
        await self._signal_all(signal.SIGTERM)
        grace = self.settings.upstream_timeout + 15
        _, pending = await asyncio.wait(watchers, timeout=grace)
        if pending:
            log.warning("workers still running %.0f s after SIGTERM: killing them", grace)
            await self._signal_all(signal.SIGKILL)
            await asyncio.wait(pending)

    async def _signal_all(self, sig: int) -> None:
        for worker in self.workers:
            proc = worker.proc
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
