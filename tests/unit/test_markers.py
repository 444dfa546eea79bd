"""The markers tests/conftest.py gives: `-m "not e2e"` is the unit tests alone, `-m browser`
the tests that drive chromium, `-m namespaces` the dev proxy's namespaced modes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def collected(marker: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", marker, "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in out.splitlines() if "::" in line]


def test_not_e2e_is_the_unit_tests_alone() -> None:
    fast = collected("not e2e")
    assert fast and all(test.startswith("tests/unit/") for test in fast)
    assert any(test.startswith("tests/unit/test_markers.py::") for test in fast)


def test_browser_and_namespaces_pick_their_tests_among_the_e2e_ones() -> None:
    browser = collected("browser")
    assert any(test.startswith("tests/e2e/test_ui_browser_e2e.py::") for test in browser)
    assert all(test.startswith("tests/e2e/") for test in browser)
    namespaces = {test.split("::")[0] for test in collected("namespaces")}
    assert namespaces == {"tests/e2e/test_dev_local_e2e.py", "tests/e2e/test_dev_wireguard_e2e.py"}
