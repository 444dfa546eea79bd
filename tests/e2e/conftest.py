from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Gateway, Simulator


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    sim = Simulator("--queued-seconds", "0.2", "--running-seconds", "0.4")
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def gateway(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway shared by the tests that don't restart or break it; each test makes its
    own org and keys, so they don't see each other's data."""
    gw = Gateway(tmp_path_factory.mktemp("gateway"), simulator.url, simulator.api_key)
    yield gw
    gw.stop()


@pytest.fixture
def fresh_gateway(simulator: Simulator, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway of the test's own, for tests that restart, kill or reconfigure it."""
    gw = Gateway(tmp_path / "gateway", simulator.url, simulator.api_key)
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _reset_simulator(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "simulator" in request.fixturenames:
        sim: Simulator = request.getfixturevalue("simulator")
        sim.configure(fixed_status=None, error_rate=0.0, latency_ms=0)
