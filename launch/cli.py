"""The command line: `run_proxy.py [flags]` serves (roles all, edge, control; --workers;
--demo), `run_proxy.py dev …` runs the dev proxy, `run_proxy.py purge [--dry-run]` one
retention pass. Logging is set up here, once, for the serving process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from launch.memory import THRESHOLD_BYTES, give_back_big_blocks
from launch.optimized import reexec_optimized
from launch.runtime import run
from launch.settings import load
from proxy.descriptors import DescriptorExhaustionLog, raise_open_files_limit

log = logging.getLogger("nextapi")


class _MitmproxyTlsProbeNoise(logging.Filter):
    """mitmproxy 12.2 probes every TLS version when a TLS option changes, and pyOpenSSL 26
    raises for SSL3 where older releases returned; the probe only feeds a warning, so the
    traceback it logs at start-up is noise, not a failure."""

    def filter(self, record: logging.LogRecord) -> bool:
        tb = record.exc_info[2] if record.exc_info else None
        while tb is not None:
            if tb.tb_frame.f_code.co_name == "_warn_unsupported_version":
                return False
            tb = tb.tb_next
        return True


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["dev"]:
        from launch.dev import main as dev_main  # the dev proxy's addons: only for `dev`

        sys.exit(dev_main(argv[1:]))
    if argv[:1] == ["purge"]:
        from launch.control import purge

        dry_run = "--dry-run" in argv
        settings = load([a for a in argv[1:] if a != "--dry-run"])
        asyncio.run(purge(settings, dry_run))
        return
    settings = load(argv)
    reexec_optimized(argv)  # a no-op when run_proxy.py did it (tests' entries do not)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(DescriptorExhaustionLog())
    log.info("open files limit: %d", raise_open_files_limit())
    if give_back_big_blocks():
        log.info("malloc: blocks of %d MiB and more go back to the system", THRESHOLD_BYTES >> 20)
    # mitmproxy's own per-connection chatter is noise at the edge.
    for noisy in ("mitmproxy", "uvicorn", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("mitmproxy.addonmanager").addFilter(_MitmproxyTlsProbeNoise())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings, argv))
