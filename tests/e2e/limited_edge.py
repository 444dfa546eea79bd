"""`run_proxy.py` started with the open-files limits in `NEXTAPI_TEST_NOFILE` ("soft:hard"), as
a machine whose limits are low would start it.

Run as `python -m tests.e2e.limited_edge <run_proxy.py's flags>` from the repository root.
"""

from __future__ import annotations

import os
import resource

from launch.cli import main

if __name__ == "__main__":
    soft, hard = (int(part) for part in os.environ["NEXTAPI_TEST_NOFILE"].split(":"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    main()
