"""The NextAPI Edge command: `python run_proxy.py [--role …] …`, `dev …`, `purge …` (see docs/)."""

import os
import sys


def _optimized_before_imports() -> None:
    """The serving roles run under `python -O` (launch.runtime says why); re-executing here,
    before the heavy imports, spares each start importing everything twice."""
    if sys.flags.optimize or os.environ.get("NEXTAPI_PYTHON_DEBUG") == "1":
        return
    if sys.argv[1:2] in (["dev"], ["purge"]):
        return
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-O", *sys.orig_argv[1:]])


def main() -> None:
    _optimized_before_imports()
    from launch.runtime import main as run

    run()


if __name__ == "__main__":
    main()
