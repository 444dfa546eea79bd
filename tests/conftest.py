"""What every test shares: bytecode caches for the processes the tests start.

With PYTHONDONTWRITEBYTECODE set (this machine, where CI runs, sets it), each edge, control
plane and simulator the tests start would compile every module it imports again: about 3 s a
start under `python -O`, whose `.opt-1.pyc` files no install writes, and the end-to-end tests
start a few hundred of them. The caches are written once, into the venv and the checkout
(both gitignored)."""

import os
import sys

os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
