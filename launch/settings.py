"""Settings: the schema's defaults (proxy/options/schema.py), then `--config FILE`, then
`NEXTAPI_<NAME>` environment variables, then command-line flags. Secrets come from the
environment only.

Every path-like setting leaves `load` absolute (relative ones are taken from the working
directory at start), so no module depends on the working directory or sees a relative path
(SQLite's file: URIs, for one, cannot express one)."""

from __future__ import annotations

import argparse
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.options import BY_NAME, OPTIONS, problems


def _from_schema[T](cls: type[T]) -> type[T]:
    """Gives each field its default from the schema; a field the schema lacks, or an option with
    no field, stops the import."""
    fields, options = set(cls.__annotations__), set(BY_NAME)
    if fields != options:
        raise TypeError(
            f"Settings and proxy/options/schema.py differ: fields only in Settings "
            f"{sorted(fields - options)}, options without a field {sorted(options - fields)}"
        )
    for name in cls.__annotations__:
        setattr(cls, name, field(default_factory=BY_NAME[name].fresh_default))
    return cls


@dataclass
@_from_schema
class Settings:
    """One field per option of the schema, of its type, at its default (the help is there)."""

    listen: str
    control_listen: str
    data_dir: Path
    database_url: str
    upstream: str
    role: str
    control_url: str
    admin_token_env: str
    workers: str
    simulator_listen: str
    demo: bool
    log_level: str
    catalog_file: str
    trusted_proxies: list[str]
    max_body_bytes: int
    tls_cert: str
    require_tls: bool
    request_header_timeout: int
    request_body_timeout: int
    keepalive_timeout: int
    max_request_line_bytes: int
    max_header_bytes: int
    max_header_fields: int
    max_connections_per_address: int
    upstream_timeout: float
    upstream_connect_timeout: float
    public_url: str
    callback_secret_env: str
    default_rate_limit: dict[str, int]
    model_limits: dict[str, dict[str, int]]
    upstream_concurrent_tasks: int
    reconcile_interval: float
    auth_failures_per_ip_per_minute: int
    wrong_secrets_per_key_per_minute: int
    wrong_secrets_per_key_ceiling_per_minute: int
    admin_auth_failures_per_minute: int
    suspend_after_rate_limited: int
    redis_url: str
    redis_prefix: str
    redis_failure: str
    usage_flush_interval: float
    hold_seconds: float
    hold_sweep_interval: float
    hold_max_seconds: float
    rollup_interval: float
    snapshot_max_age_hours: float
    clerk_jwks_url: str
    clerk_jwt_key: str
    clerk_authorized_parties: list[str]
    posthog_host: str
    portal_oidc_issuer: str
    portal_oidc_client_id: str
    retention_api_logs_days: int
    retention_billing_days: int
    retention_closed_account_days: int
    retention_security_events_days: int
    retention_interval_hours: float
    video_store: str
    video_link_hours: float
    video_chunk_bytes: int
    video_max_bytes: int


def _apply(settings: Settings, values: dict[str, Any], source: str) -> None:
    for name, value in values.items():
        option = BY_NAME.get(name)
        if option is None:
            raise SystemExit(f"{source}: unknown setting `{name}`")
        try:
            setattr(settings, name, option.coerce(value))
        except (TypeError, ValueError) as exc:
            reason = f" ({exc})" if option.choices else ""
            raise SystemExit(f"{source}: bad value for `{name}`: {value!r}{reason}") from None


def parser() -> argparse.ArgumentParser:
    """`--config`, and a flag for each option of the schema that has one."""
    p = argparse.ArgumentParser(
        prog="run_proxy.py",
        description="NextAPI Edge: the Seedance gateway (mitmproxy) and its control plane.",
    )
    p.add_argument("--config", type=Path, help="a TOML file of settings")
    for option in OPTIONS:
        if option.cli_flag is None:
            continue
        text = option.help.replace("%", "%%")
        if option.kind is bool:
            p.add_argument(option.cli_flag, dest=option.name, action="store_true", help=text)
        else:
            p.add_argument(option.cli_flag, dest=option.name, choices=option.choices, help=text)
    return p


def load(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    environ = dict(os.environ) if environ is None else environ
    args = parser().parse_args(argv)
    settings = Settings()
    config_file = args.config or environ.get("NEXTAPI_CONFIG")
    if config_file:
        try:
            text = Path(config_file).read_text()
        except OSError as exc:
            raise SystemExit(f"--config: {exc}") from None
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SystemExit(f"{config_file}: not TOML: {exc}") from None
        _apply(settings, values, str(config_file))
    from_env = {option.name: environ[option.env] for option in OPTIONS if option.env in environ}
    _apply(settings, from_env, "environment")
    from_flags = {
        name: value
        for name, value in vars(args).items()
        if name in BY_NAME and value is not None and value is not False
    }
    _apply(settings, from_flags, "command line")
    if settings.demo:
        if not settings.public_url:
            settings.public_url = "auto"  # the simulator calls back on loopback
        # The demo stays on loopback unless told otherwise.
        if "listen" not in from_flags and "listen" not in from_env:
            settings.listen = "127.0.0.1:8080"
    if settings.tls_cert:
        # The privacy policy promises TLS 1.3: plain HTTP is refused (addons/edge.py).
        settings.require_tls = True
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
    wrong = problems(settings)  # each option's own bounds, from the schema
    if wrong:
        raise SystemExit("; ".join(wrong))
    if settings.tls_cert and not Path(settings.tls_cert).is_file():
        raise SystemExit(f"--tls-cert: no such file: {settings.tls_cert}")
    if settings.hold_max_seconds < settings.hold_seconds + settings.upstream_timeout:
        raise SystemExit("`hold_max_seconds` must be at least hold_seconds + upstream_timeout")
