"""The `dev` command line: its options (declared in proxy/options/dev_schema.py), the `env`
subcommand and the `-- CMD ARGS…` tail, read into DevSettings."""

from __future__ import annotations

import argparse
import ipaddress
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_origin

from addons.devmode.targets import SIM, Target
from proxy.options.dev_schema import DEV_OPTIONS

SEEDANCE_HOSTS = ("ark.ap-southeast.bytepluses.com", "ark.cn-beijing.volces.com")
MODES = ("regular", "local", "wireguard")


class DevUsageError(ValueError):
    """Bad `dev` input: the message is printed as is and the command exits 2."""


@dataclass(frozen=True)
class DevSettings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8899
    data_dir: Path = Path("data")
    target: Target = SIM
    key: str | None = None
    intercept: tuple[str, ...] = SEEDANCE_HOSTS
    mode: str = "regular"
    local_processes: str = ""  # for --mode local: names or pids, comma-separated ("" = all)
    json_tail: bool = False
    bodies: bool = False
    record: Path | None = None
    replay: Path | None = None
    replay_miss: str = "501"  # or "target"
    forward_callbacks_to: str | None = None
    fail_rate: float = 0.0
    latency_ms: int = 0
    force_status: int | None = None
    queued_seconds: float = 1.0
    running_seconds: float = 2.0
    command: list[str] = field(default_factory=list)  # after `--`
    env_only: bool = False  # `dev env`

    @property
    def dev_dir(self) -> Path:
        """Where the dev CA, the bundle and the callback secret live (one set per data dir)."""
        return self.data_dir / "dev"

    @property
    def loopback_only(self) -> bool:
        return is_loopback(self.listen_host)

    @property
    def proxy_url(self) -> str:
        host = "127.0.0.1" if self.listen_host in ("0.0.0.0", "") else self.listen_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.listen_port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parser() -> argparse.ArgumentParser:
    """A flag for each option of proxy/options/dev_schema.py; a default the environment gives is
    read now, at each parse."""
    p = argparse.ArgumentParser(
        prog="run_proxy.py dev",
        description="Catch an app's Seedance calls on this machine and answer them locally.",
        epilog="`dev env` prints the proxy settings as export lines; "
        "`dev [options] -- CMD ARGS…` runs CMD through the proxy and exits with its status.",
    )
    for option in DEV_OPTIONS:
        assert option.cli_flag is not None
        text = option.help.replace("%", "%%")
        default = option.fresh_default()
        if option.environment:
            default = os.environ.get(option.environment, default)
        if option.kind is bool:
            p.add_argument(option.cli_flag, action="store_true", default=default, help=text)
        elif get_origin(option.kind) is list:  # repeatable
            p.add_argument(
                option.cli_flag, action="append", default=default, metavar=option.metavar, help=text
            )
        else:
            p.add_argument(
                option.cli_flag,
                type=option.kind if option.kind in (int, float, Path) else None,
                choices=option.choices,
                default=default,
                metavar=option.metavar,
                help=text,
            )
    return p


def parse(argv: list[str]) -> DevSettings:
    """`argv` after `dev`. Raises DevUsageError for values argparse cannot check itself."""
    command: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1 :]
        if not command:
            raise DevUsageError("`dev --` needs a command to run")
    env_only = argv[:1] == ["env"]
    if env_only:
        argv = argv[1:]
    args = parser().parse_args(argv)
    host, port = _hostport(args.listen)
    target = parse_target(args.target)
    mode, _, processes = args.mode.partition(":")
    if mode not in MODES or (processes and mode != "local"):
        raise DevUsageError(
            f"--mode must be regular, local[:PROCESS,…] or wireguard, not {args.mode!r}"
        )
    if args.record and args.replay:
        raise DevUsageError("--record and --replay cannot be used together")
    if not 0 <= args.fail_rate <= 1:
        raise DevUsageError("--fail-rate must be between 0 and 1")
    if args.latency < 0:
        raise DevUsageError("--latency must be >= 0 (milliseconds)")
    if args.force_status is not None and not 400 <= args.force_status <= 599:
        raise DevUsageError("--force-status must be an HTTP error status, 400–599")
    if args.key is not None and not args.key.strip():
        raise DevUsageError("--key may not be empty")
    if args.forward_callbacks_to and not args.forward_callbacks_to.startswith(
        ("http://", "https://")
    ):
        raise DevUsageError("--forward-callbacks-to must be an http(s) URL")
    extra = tuple(h.strip().lower() for h in args.intercept if h.strip())
    return DevSettings(
        listen_host=host,
        listen_port=port,
        data_dir=Path(args.data_dir),
        target=target,
        key=args.key,
        intercept=tuple(dict.fromkeys((*SEEDANCE_HOSTS, *extra))),
        mode=mode,
        local_processes=processes,
        json_tail=args.json,
        bodies=args.bodies,
        record=args.record,
        replay=args.replay,
        replay_miss=args.replay_miss,
        forward_callbacks_to=args.forward_callbacks_to,
        fail_rate=args.fail_rate,
        latency_ms=args.latency,
        force_status=args.force_status,
        queued_seconds=args.queued_seconds,
        running_seconds=args.running_seconds,
        command=command,
        env_only=env_only,
    )


def parse_target(value: str) -> Target:
    if value == "sim":
        return SIM
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DevUsageError(f"--target must be `sim` or an http(s) URL, got {value!r}")
    if parts.query or parts.fragment:
        raise DevUsageError("--target may not carry a query or fragment")
    return Target(value.rstrip("/"))


def _hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise DevUsageError(f"--listen must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)
