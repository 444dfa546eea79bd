"""Settings: defaults from config/default.toml, then `--config FILE`, then `NEXTAPI_<NAME>`
environment variables, then command-line flags. Secrets come from the environment only.

Every path-like setting leaves `load` absolute (relative ones are taken from the working
directory at start), so no module depends on the working directory or sees a relative path
(SQLite's file: URIs, for one, cannot express one)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# config/ ships beside the packages (pyproject.toml says how), so this holds in a checkout and
# in an installed wheel alike.
DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "config" / "default.toml"


@dataclass
class Settings:
    listen: str = "0.0.0.0:8080"
    control_listen: str = "127.0.0.1:9090"
    data_dir: Path = Path("data")
    upstream: str = "https://ark.ap-southeast.bytepluses.com"
    admin_token_env: str = "NEXTAPI_ADMIN_TOKEN"
    role: str = "all"  # all | edge | control
    control_url: str = ""
    redis_url: str = ""
    trusted_proxies: list[str] = field(default_factory=list)
    max_body_bytes: int = 10 * 2**20
    upstream_timeout: float = 60.0
    upstream_connect_timeout: float = 10.0
    # Client connections (addons/connections.py), in seconds: a request head must be complete
    # this long after its first byte (a connection's first: after the connection opened, TLS
    # included); a request body may pause this long; a connection may idle between requests.
    request_header_timeout: int = 10
    request_body_timeout: int = 30
    keepalive_timeout: int = 75
    # A request head's sizes (like nginx's and Apache's defaults): past one, 431.
    max_request_line_bytes: int = 8 * 1024
    max_header_bytes: int = 32 * 1024
    max_header_fields: int = 100
    # Connections one client address may hold open (0: no cap; trusted proxies: none).
    max_connections_per_address: int = 256
    usage_flush_interval: float = 0.2
    # The edge's URL as the upstream reaches it (task callbacks); "auto": the listener's address.
    public_url: str = ""
    redis_prefix: str = "nextapi:"
    redis_failure: str = "local"  # local: fall back to this edge's own counters | closed: 503
    # Limits of an org that sets none (requests_per_minute, requests_per_day, concurrent_tasks).
    default_rate_limit: dict[str, int] = field(default_factory=dict)
    # Company-wide caps that protect the shared upstream account, per model id.
    model_limits: dict[str, dict[str, int]] = field(default_factory=dict)
    upstream_concurrent_tasks: int = 120
    auth_failures_per_ip_per_minute: int = 30
    wrong_secrets_per_key_per_minute: int = 10  # for one key id from one address
    wrong_secrets_per_key_ceiling_per_minute: int = 100  # for one key id from all addresses
    reconcile_interval: float = 15.0
    # Credit holds of creates never answered (control/jobs/holds.py), in seconds: stale after
    # hold_seconds, swept every hold_sweep_interval (the upstream's tasks of such creates found
    # and charged first), released unmatched after hold_max_seconds if the upstream cannot be
    # listed meanwhile.
    hold_seconds: float = 300.0
    hold_sweep_interval: float = 60.0
    hold_max_seconds: float = 3600.0
    # A key refused this many times for its rate limits within 10 minutes is suspended (0: never).
    suspend_after_rate_limited: int = 1000
    # Seeds the control plane's model catalog at its first start; empty: config/models.toml.
    catalog_file: str = ""
    # Retention (the privacy policy's periods), and how often the purge runs.
    retention_api_logs_days: int = 90
    retention_billing_days: int = 7 * 365 + 2
    retention_closed_account_days: int = 30
    retention_security_events_days: int = 90
    retention_interval_hours: float = 1.0
    # How often new usage rows are folded into the rollups the usage aggregates read.
    rollup_interval: float = 60.0
    # The gateway's copies of videos: "" = <data_dir>/videos (with --role edge: none, unless
    # given a store the control plane shares), a directory, `s3://bucket/prefix?endpoint=…`
    # (credentials from the environment), or "off" (the upstream's 24-hour links pass through).
    video_store: str = ""
    video_link_hours: float = 24.0  # how long one signed link works (never past retention)
    video_chunk_bytes: int = 8 * 2**20  # most bytes in one answer to a range request
    video_max_bytes: int = 512 * 2**20  # Seedance's videos are 2-12 s: tens of MB at most
    # PEM with the edge's certificate and key: the listener then speaks TLS 1.3 only.
    tls_cert: str = ""
    simulator_listen: str = "127.0.0.1:8788"
    demo: bool = False
    log_level: str = "info"
    # Edge processes on the one listening port ("auto": one per core); more than one needs Redis.
    workers: str = "1"
    # An edge apart decides on policy its control plane confirmed within this many hours (also
    # from its file on disk after a restart); past that, keys get 503 until it answers again.
    snapshot_max_age_hours: float = 24.0


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    kind = _FIELDS[name].type
    if kind == "bool":
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "Path":
        return Path(value)
    if kind.startswith("dict["):
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, dict):
            raise ValueError(name)
        return value
    if kind == "list[str]":
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return [str(part) for part in value]
    return str(value)


def _apply(settings: Settings, values: dict[str, Any], source: str) -> None:
    for name, value in values.items():
        if name not in _FIELDS:
            raise SystemExit(f"{source}: unknown setting `{name}`")
        try:
            setattr(settings, name, _coerce(name, value))
        except (TypeError, ValueError):
            raise SystemExit(f"{source}: bad value for `{name}`: {value!r}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_proxy.py",
        description="NextAPI Edge: the Seedance gateway (mitmproxy) and its control plane.",
    )
    p.add_argument("--demo", action="store_true", help="also run the Seedance simulator, demo data")
    p.add_argument("--config", type=Path, help="a TOML file of settings")
    p.add_argument("--listen", help="edge HOST:PORT (port 0: any free port)")
    p.add_argument("--control-listen", help="control plane HOST:PORT")
    p.add_argument("--data-dir", help="where the SQLite file and the usage spool live")
    p.add_argument("--upstream", help="Seedance base URL (scheme://host[:port])")
    p.add_argument("--admin-token-env", help="env var holding an admin token")
    p.add_argument("--role", choices=("all", "edge", "control"))
    p.add_argument("--control-url", help="control plane URL, for an edge that runs apart")
    p.add_argument("--redis-url", help="Redis for counters shared by several edges")
    p.add_argument("--trusted-proxies", help="comma-separated CIDRs whose X-Forwarded-For counts")
    p.add_argument("--max-body-bytes", type=int)
    p.add_argument("--tls-cert", help="PEM with certificate and key: serve TLS 1.3 only")
    p.add_argument("--upstream-timeout", type=float)
    p.add_argument("--simulator-listen", help="--demo: the simulator's HOST:PORT")
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    p.add_argument("--workers", help="edge processes on the one port: N or auto (one per core)")
    return p


def load(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ) if environ is None else environ
    args = parser().parse_args(argv)
    settings = Settings()
    try:
        defaults = DEFAULTS_FILE.read_text()
    except OSError as exc:
        # Fail closed: without the shipped defaults every setting would silently be the
        # dataclass's, which is not what the operator read in config/default.toml.
        raise SystemExit(f"the shipped defaults are missing ({exc}): reinstall") from None
    _apply(settings, tomllib.loads(defaults), str(DEFAULTS_FILE))
    config_file = args.config or environ.get("NEXTAPI_CONFIG")
    if config_file:
        try:
            text = Path(config_file).read_text()
        except OSError as exc:
            raise SystemExit(f"--config: {exc}") from None
        _apply(settings, tomllib.loads(text), str(config_file))
    from_env = {
        name: environ[f"NEXTAPI_{name.upper()}"]
        for name in _FIELDS
        if f"NEXTAPI_{name.upper()}" in environ
    }
    _apply(settings, from_env, "environment")
    from_flags = {
        name: value
        for name, value in vars(args).items()
        if name in _FIELDS and value is not None and value is not False
    }
    _apply(settings, from_flags, "command line")
    if settings.demo:
        if not settings.public_url:
            settings.public_url = "auto"  # the simulator calls back on loopback
        # The demo stays on loopback unless told otherwise.
        if "listen" not in from_flags and "listen" not in from_env:
            settings.listen = "127.0.0.1:8080"
    resolve_paths(settings, Path.cwd())
    validate(settings)
    return settings


def _absolute(value: str | Path, cwd: Path) -> Path:
    """`value` as an absolute path (`~` expanded, relative: from `cwd`); not normalised, so a
    `..` after a symbolic link keeps its meaning."""
    return cwd / Path(value).expanduser()  # an absolute right-hand side wins


def resolve_paths(settings: Settings, cwd: Path) -> None:
    """Makes every path-like setting absolute, once, at start."""
    settings.data_dir = _absolute(settings.data_dir, cwd)
    if settings.catalog_file:
        settings.catalog_file = str(_absolute(settings.catalog_file, cwd))
    if settings.tls_cert:
        settings.tls_cert = str(_absolute(settings.tls_cert, cwd))
    store = settings.video_store.strip()
    if store and store != "off" and "://" not in store:  # a directory (else: none or a URL)
        settings.video_store = str(_absolute(store, cwd))


def split_hostport(value: str, name: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise SystemExit(f"`{name}` must be HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def worker_count(settings: Settings) -> int:
    if settings.workers == "auto":
        return (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
    return int(settings.workers)


def connection_timeouts(settings: Settings) -> tuple[int, int, int]:
    """Header, body and keep-alive time limits of client connections, in seconds."""
    return (
        settings.request_header_timeout,
        settings.request_body_timeout,
        settings.keepalive_timeout,
    )


def validate(settings: Settings) -> None:
    if settings.workers != "auto" and not (
        settings.workers.isdigit() and int(settings.workers) >= 1
    ):
        raise SystemExit("`workers` must be a positive number or auto")
    workers = worker_count(settings)
    if workers > 1 and not settings.redis_url:
        raise SystemExit(
            f"--workers {settings.workers} needs --redis-url: each worker is a process of its own, "
            "so without counters shared through Redis every rate limit, failed-auth count and "
            "concurrency cap would be counted per worker (N times what is configured)"
        )
    if workers > 1 and (settings.role != "all" or settings.demo):
        raise SystemExit("--workers runs the whole gateway: use it with --role all, without --demo")
    split_hostport(settings.listen, "listen")
    split_hostport(settings.control_listen, "control_listen")
    if settings.role not in ("all", "edge", "control"):
        raise SystemExit("`role` must be all, edge or control")
    if settings.role == "edge" and not settings.control_url:
        raise SystemExit("--role edge needs --control-url")
    if not settings.upstream.startswith(("http://", "https://")):
        raise SystemExit("`upstream` must be an http(s) URL")
    if settings.tls_cert and not Path(settings.tls_cert).is_file():
        raise SystemExit(f"--tls-cert: no such file: {settings.tls_cert}")
    if min(settings.video_link_hours, settings.video_max_bytes, settings.video_chunk_bytes) <= 0:
        raise SystemExit("`video_link_hours`, `video_max_bytes`, `video_chunk_bytes` must be > 0")
    if settings.rollup_interval <= 0:
        raise SystemExit("`rollup_interval` must be positive (seconds)")
    if settings.max_body_bytes <= 0:
        raise SystemExit("`max_body_bytes` must be positive")
    if min(connection_timeouts(settings)) <= 0:
        raise SystemExit(
            "`request_header_timeout`, `request_body_timeout`, `keepalive_timeout` must be > 0"
        )
    if (
        min(settings.max_request_line_bytes, settings.max_header_bytes, settings.max_header_fields)
        <= 0
    ):
        raise SystemExit(
            "`max_request_line_bytes`, `max_header_bytes`, `max_header_fields` must be > 0"
        )
    if settings.max_connections_per_address < 0:
        raise SystemExit("`max_connections_per_address` must be >= 0 (0: no cap)")
    if settings.redis_failure not in ("local", "closed"):
        raise SystemExit("`redis_failure` must be local or closed")
    if settings.redis_url and not settings.redis_url.startswith(("redis://", "rediss://")):
        raise SystemExit("`redis_url` must be a redis:// or rediss:// URL")
    if min(settings.hold_seconds, settings.hold_sweep_interval) <= 0:
        raise SystemExit("`hold_seconds` and `hold_sweep_interval` must be positive")
    if settings.hold_max_seconds < settings.hold_seconds + settings.upstream_timeout:
        raise SystemExit("`hold_max_seconds` must be at least hold_seconds + upstream_timeout")
    if not settings.snapshot_max_age_hours > 0:
        raise SystemExit("`snapshot_max_age_hours` must be positive")
