"""Every option of `run_proxy.py dev` (the dev proxy, addons/devmode/), declared once: its
command line (addons/devmode/settings.py builds the parser from here) and the table of
docs/developers/dev-proxy.md (`python -m proxy.options --dev-markdown`) read them. The dev proxy
has flags only: no TOML file, no mitmproxy option of the edge's, and the environment for two
defaults alone (`NEXTAPI_DATA_DIR`, `NEXTAPI_DEV_KEY`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from proxy.options.option import Option


@dataclass(frozen=True)
class DevOption(Option):
    """An option of the edge's kind, a flag always, with what only the dev command has: the
    name of its value in `--help` and the docs, and the variable (if any) that gives its
    default. `name` is the flag's (`--replay-miss`: `replay_miss`)."""

    flag: bool = True
    metavar: str | None = None  # HOST:PORT, FILE…; None: argparse's own (none for a switch)
    environment: str | None = None  # the variable whose value is the default when it is set

    @property
    def env(self) -> str:
        """The variable read, "" for none (never NEXTAPI_<NAME>: `--listen` is not the edge's)."""
        return self.environment or ""


DEV_OPTIONS: tuple[DevOption, ...] = (
    DevOption(
        "listen",
        str,
        "127.0.0.1:8899",
        "Where the proxy listens (port 0: any free port); a host other than loopback prints a "
        "warning.",
        metavar="HOST:PORT",
    ),
    DevOption(
        "data_dir",
        Path,
        Path("data"),
        "The dev CA, its bundle and the callback secret live in DIR/dev.",
        metavar="DIR",
        environment="NEXTAPI_DATA_DIR",
    ),
    DevOption(
        "target",
        str,
        "sim",
        "Where caught calls go: `sim` (the simulator), or the URL of a NextAPI edge (or any URL "
        "you name on purpose).",
        metavar="sim|URL",
    ),
    DevOption(
        "key",
        str,
        None,
        "Your `nk_test_…` key: it replaces the app's Authorization on the way to the target.",
        metavar="KEY",
        environment="NEXTAPI_DEV_KEY",
    ),
    DevOption(
        "intercept",
        list[str],
        [],
        "Catch this host too, besides Seedance's (repeatable).",
        metavar="HOST",
    ),
    DevOption(
        "mode",
        str,
        "regular",
        "regular (an HTTP proxy), local[:PROCS] (those processes captured: names or PIDs, "
        "comma-separated; all without a list) or wireguard (a WireGuard server); see Modes in "
        "docs/developers/dev-proxy.md.",
        metavar="regular|local[:PROCS]|wireguard",
    ),
    DevOption("json", bool, False, "The tail as one JSON object a line."),
    DevOption("bodies", bool, False, "The tail with both bodies, keys and credentials redacted."),
    DevOption(
        "record",
        Path,
        None,
        "Write every exchange the target answered to this cassette, redacted.",
        metavar="FILE",
    ),
    DevOption(
        "replay",
        Path,
        None,
        "Answer from this cassette, offline, in recorded order.",
        metavar="FILE",
    ),
    DevOption(
        "replay_miss",
        str,
        "501",
        "A call the cassette has no answer for: a 501 `NotRecorded`, or sent to the target.",
        choices=("501", "target"),
    ),
    DevOption(
        "forward_callbacks_to",
        str,
        None,
        "Post the status changes of every caught task here, signed.",
        metavar="URL",
    ),
    DevOption(
        "fail_rate", float, 0.0, "The simulator: the share of calls answered 500.", metavar="R"
    ),
    DevOption(
        "latency",
        int,
        0,
        "The simulator: a delay before each answer, in milliseconds.",
        metavar="MS",
    ),
    DevOption(
        "force_status",
        int,
        None,
        "The simulator: every call answered with this error status (400–599).",
        metavar="STATUS",
    ),
    DevOption(
        "queued_seconds", float, 1.0, "The simulator: how long a task stays queued.", metavar="S"
    ),
    DevOption("running_seconds", float, 2.0, "The simulator: how long a task runs.", metavar="S"),
)
DEV_BY_NAME = {option.name: option for option in DEV_OPTIONS}
