"""launch/masters.py: what the edge and the dev proxy share of running a mitmproxy master."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from mitmproxy import ctx

from launch.masters import ListenReporter, first


class _Server(SimpleNamespace):
    def listen_addrs(self) -> list[tuple[str, int]]:
        return self.addresses


def _running(reporter: ListenReporter, server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    master = SimpleNamespace(addons=SimpleNamespace(get=lambda name: server))
    monkeypatch.setattr(ctx, "master", master, raising=False)
    reporter.running()


class _Heard(ListenReporter):
    def __init__(self) -> None:
        super().__init__()
        self.heard: list[Any] = []

    def listening(self, server: Any) -> None:
        self.heard.append(self.address)


def test_a_running_server_is_reported_with_the_address_it_got(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reporter = _Heard()
    up = SimpleNamespace(is_running=True, last_exception=None)
    _running(reporter, _Server(servers=[up], addresses=[("127.0.0.1", 40123, 0, 0)]), monkeypatch)
    assert reporter.ready.is_set()
    assert (reporter.address, reporter.failure, reporter.heard) == (
        ("127.0.0.1", 40123),
        None,
        [("127.0.0.1", 40123)],
    )


def test_a_server_that_could_not_start_is_a_failure_without_its_rust_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reporter = _Heard()
    error = OSError("address in use\n\nStack backtrace:\n  0: …")
    down = SimpleNamespace(is_running=False, last_exception=error)
    _running(reporter, _Server(servers=[down], addresses=[]), monkeypatch)
    assert reporter.ready.is_set()
    assert (reporter.address, reporter.failure, reporter.heard) == (None, "address in use", [])


def test_first_returns_once_what_it_waits_for_is_done() -> None:
    async def body() -> None:
        master_task = asyncio.create_task(asyncio.sleep(10))
        await first(asyncio.sleep(0), master_task, "the edge")
        assert not master_task.done()
        master_task.cancel()

    asyncio.run(body())


def test_first_exits_when_the_master_stops_before() -> None:
    async def body() -> None:
        master_task = asyncio.create_task(asyncio.sleep(0))
        with pytest.raises(SystemExit, match="the edge stopped unexpectedly"):
            await first(asyncio.sleep(10), master_task, "the edge")

    asyncio.run(body())


def test_first_raises_the_error_the_master_stopped_with() -> None:
    async def crash() -> None:
        raise RuntimeError("boom")

    async def body() -> None:
        master_task = asyncio.create_task(crash())
        with pytest.raises(RuntimeError, match="boom"):
            await first(asyncio.sleep(10), master_task, "the dev proxy")

    asyncio.run(body())
