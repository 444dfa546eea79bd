from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.harness import Cluster, Gateway, Simulator
from tests.e2e.stripe_sim import StripeSimulator

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from tests.e2e.browser import Watched


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


@pytest.fixture
def fresh_cluster(simulator: Simulator, tmp_path: Path) -> Iterator[Cluster]:
    """A control plane of the test's own, for edges apart (`cluster.edge()`)."""
    cluster = Cluster(tmp_path, simulator)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def stripe_sim() -> Iterator[StripeSimulator]:
    """The Stripe simulator the payment tests share; each gateway points its webhook at itself
    (tests/e2e/payments.py)."""
    sim = StripeSimulator("--webhook-backoff", "0.05")
    yield sim
    sim.stop()


@pytest.fixture(autouse=True)
def _reset_simulator(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "simulator" in request.fixturenames:
        sim: Simulator = request.getfixturevalue("simulator")
        sim.configure(fixed_status=None, error_rate=0.0, latency_ms=0)
    if "stripe_sim" in request.fixturenames:
        request.getfixturevalue("stripe_sim").declines(False)


# The dashboard's browser tests (tests/e2e/browser.py); playwright is imported only by them.


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    from tests.e2e.browser import CHROMIUM

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install -y chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def watched(browser: Browser, gateway: Gateway) -> Iterator[Watched]:
    from tests.e2e.browser import Watched

    session = Watched(browser, gateway.control_url)
    yield session
    session.close()
    assert session.errors == [], session.errors
