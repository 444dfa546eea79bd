"""What every test shares: bytecode caches for the processes the tests start.

With PYTHONDONTWRITEBYTECODE set (this machine, where CI runs, sets it), each edge, control
plane and simulator the tests start would compile every module it imports again: about 3 s a
start under `python -O`, whose `.opt-1.pyc` files no install writes, and the end-to-end tests
start a few hundred of them. The caches are written once, into the venv and the checkout
(both gitignored)."""

import os
import sys
from pathlib import Path

import pytest

os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False


E2E = Path(__file__).parent / "e2e"
# The dev proxy's modes that run inside namespaces of their own (root, unshare, ip netns).
NAMESPACES = {"test_dev_local_e2e.py", "test_dev_wireguard_e2e.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Markers by where a test lives and what it uses, so that no file has to remember them."""
    for item in items:
        path = Path(item.path)
        if E2E in path.parents:
            item.add_marker(pytest.mark.e2e)
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
        if path.name in NAMESPACES:
            item.add_marker(pytest.mark.namespaces)
