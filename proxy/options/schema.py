"""Every option of the edge, declared once: run_proxy.py's settings (launch/settings.py: the
command line, the environment, `--config` TOML files) and the mitmproxy options of the chain's
addons (`mitmdump -s addons/gateway.py --set …`) are read from here, and so is the table of
docs/operators/configuration.md (`python -m proxy.options --markdown`). Defaults live only here.
Secrets are no option: they come from the environment alone (NEXTAPI_UPSTREAM_KEY, the token
NEXTAPI_ADMIN_TOKEN or the variable `admin_token_env` names). Long by design: it is the one table
of every option, and a split would scatter what it exists to gather."""

from __future__ import annotations

from pathlib import Path

from proxy.options.checks import (
    at_least_zero,
    control_urls,
    limits_problem,
    model_limits_problem,
    networks,
    positive,
    up_to,
    url_of,
)
from proxy.options.option import Option

MIB = 2**20

OPTIONS: tuple[Option, ...] = (
    # --- where things are --------------------------------------------------------------------
    Option(
        "listen",
        str,
        "0.0.0.0:8080",
        "The edge's HOST:PORT (port 0: any free port; `--demo`: 127.0.0.1:8080 unless given).",
        flag=True,
    ),
    Option("control_listen", str, "127.0.0.1:9090", "The control plane's HOST:PORT.", flag=True),
    Option(
        "data_dir",
        Path,
        Path("data"),
        "Where the SQLite file, the usage spool and an edge "
        "apart's last policy snapshot live (relative: from the working directory at start).",
        mitm="nextapi_data_dir",
        flag=True,
    ),
    Option(
        "database_url",
        str,
        "",
        "The control plane's PostgreSQL database, postgresql://[USER@]HOST[:PORT]/NAME (a "
        "password from PGPASSWORD or ~/.pgpass rather than the URL; never logged). Empty: the "
        "SQLite file in `data_dir`.",
        flag=True,
        check=url_of("postgresql", "postgres"),
    ),
    Option(
        "upstream",
        str,
        "https://ark.ap-southeast.bytepluses.com",
        "Seedance's base URL (scheme://host[:port]).",
        flag=True,
        check=url_of("http", "https", required=True),
    ),
    Option(
        "role",
        str,
        "all",
        "Run the edge and the control plane (all), or one of them.",
        flag=True,
        choices=("all", "edge", "control"),
    ),
    Option(
        "control_url",
        str,
        "",
        "The control plane's URL, for an edge apart (`--role edge`, "
        "mitmdump): policy is pulled from it and usage shipped to it. Several (up to 8, "
        "comma-separated: replicas on one database): a call moves to the next on a connection "
        "error, a timeout or a 5xx.",
        mitm="nextapi_control_url",
        flag=True,
        check=control_urls,
    ),
    Option(
        "admin_token_env",
        str,
        "NEXTAPI_ADMIN_TOKEN",
        "The environment variable holding the "
        "admin token: it works from the first start (stored as an Argon2id hash), and an "
        "edge apart presents it to its control plane.",
        mitm="nextapi_token_env",
        flag=True,
    ),
    Option(
        "workers",
        str,
        "1",
        "Edge processes on the one listening port: N or auto (one per "
        "core); more than one needs `redis_url`.",
        flag=True,
    ),
    Option(
        "simulator_listen", str, "127.0.0.1:8788", "`--demo`: the simulator's HOST:PORT.", flag=True
    ),
    Option(
        "demo",
        bool,
        False,
        "Also run the Seedance simulator as the upstream, with a demo org and key.",
        flag=True,
    ),
    Option(
        "log_level",
        str,
        "info",
        "The serving process's log level.",
        flag=True,
        choices=("debug", "info", "warning", "error"),
    ),
    Option(
        "catalog_file",
        str,
        "",
        "Seeds the control plane's model catalog at its first start (empty: config/models.toml).",
    ),
    # --- the edge's requests and connections -------------------------------------------------
    Option(
        "trusted_proxies",
        list[str],
        [],
        "Comma-separated addresses/CIDRs of proxies whose "
        "X-Forwarded-For is believed (none: no proxy is).",
        mitm="nextapi_trusted_proxies",
        flag=True,
        check=networks,
    ),
    Option(
        "max_body_bytes",
        int,
        10 * MIB,
        "Largest request body the edge accepts (reference "
        "images may be data URLs); larger ones get 413.",
        mitm="nextapi_max_body_bytes",
        flag=True,
        check=positive,
    ),
    Option(
        "tls_cert",
        str,
        "",
        "PEM with the edge's certificate and key: the listener then speaks "
        "TLS 1.3 only and refuses plain HTTP (sets `require_tls`).",
        flag=True,
    ),
    Option(
        "require_tls",
        bool,
        False,
        "Refuse requests that did not come over TLS (403).",
        mitm="nextapi_require_tls",
    ),
    Option(
        "request_header_timeout",
        int,
        10,
        "Seconds a request head (request line and headers) "
        "may take from its first byte; a connection's first head counts from the connection's "
        "start, TLS handshake included.",
        mitm="nextapi_request_header_timeout",
        check=positive,
    ),
    Option(
        "request_body_timeout",
        int,
        30,
        "Seconds a request body may pause between bytes (a body that keeps coming is never cut).",
        mitm="nextapi_request_body_timeout",
        check=positive,
    ),
    Option(
        "keepalive_timeout",
        int,
        75,
        "Seconds a client connection may sit idle between requests.",
        mitm="nextapi_keepalive_timeout",
        check=positive,
    ),
    Option(
        "max_request_line_bytes",
        int,
        8 * 1024,
        "Bytes a request line may hold (without its CRLF); past it 431 and the connection closed.",
        mitm="nextapi_max_request_line_bytes",
        check=positive,
    ),
    Option(
        "max_header_bytes",
        int,
        32 * 1024,
        "Bytes a whole request head may hold (request line, header lines, the empty line).",
        mitm="nextapi_max_header_bytes",
        check=positive,
    ),
    Option(
        "max_header_fields",
        int,
        100,
        "Header lines a request head may hold.",
        mitm="nextapi_max_header_fields",
        check=positive,
    ),
    Option(
        "max_connections_per_address",
        int,
        256,
        "Client connections one address (an IPv6 "
        "client: its /64) may hold open; past it a new one is answered 503 and closed. 0: no "
        "cap. Trusted proxies are not capped.",
        mitm="nextapi_max_connections_per_address",
        check=at_least_zero,
    ),
    # --- the upstream ------------------------------------------------------------------------
    Option(
        "upstream_timeout",
        float,
        60.0,
        "Seconds to wait for the upstream's answer (then 504).",
        mitm="nextapi_upstream_timeout",
        flag=True,
        check=positive,
    ),
    Option(
        "upstream_connect_timeout",
        float,
        10.0,
        "Seconds to wait for a connection to the upstream.",
        mitm="nextapi_upstream_connect_timeout",
        check=positive,
    ),
    Option(
        "public_url",
        str,
        "",
        "The edge's URL as the upstream reaches it, for task callbacks "
        "and video links (empty: callback_url is dropped; `auto`: the listener's own address, "
        "for local use; `--demo`: auto).",
        mitm="nextapi_public_url",
        check=url_of("http", "https", also=("auto",)),
    ),
    Option(
        "callback_secret_env",
        str,
        "NEXTAPI_CALLBACK_SECRET",
        "The environment variable with "
        "the key that signs callback URLs (unset: derived from the upstream key, which every "
        "edge shares).",
        mitm="nextapi_callback_secret_env",
    ),
    # --- limits ------------------------------------------------------------------------------
    Option(
        "default_rate_limit",
        dict[str, int],
        {"requests_per_minute": 600, "requests_per_day": 200000, "concurrent_tasks": 20},
        "Limits of an org that sets none of its own (JSON in the environment and in mitmproxy).",
        mitm="nextapi_default_limits",
        check=limits_problem,
    ),
    Option(
        "model_limits",
        dict[str, dict[str, int]],
        {},
        "Company-wide caps per upstream model, "
        'e.g. {"seedance-1-0-pro-250528": {"requests_per_minute": 600, '
        '"concurrent_tasks": 60}}.',
        mitm="nextapi_model_limits",
        check=model_limits_problem,
    ),
    Option(
        "upstream_concurrent_tasks",
        int,
        120,
        "Unfinished tasks the shared upstream account holds at most, over all customers.",
        mitm="nextapi_upstream_concurrent_tasks",
        check=positive,
    ),
    Option(
        "reconcile_interval",
        float,
        15.0,
        "Seconds between polls of the upstream for "
        "unfinished tasks (they free their concurrency slots).",
        mitm="nextapi_reconcile_interval",
        check=positive,
    ),
    Option(
        "auth_failures_per_ip_per_minute",
        int,
        30,
        "Failed authentications per minute from one "
        "client address before it gets 429 (before any Argon2id work).",
        mitm="nextapi_auth_failures_per_ip",
        check=positive,
    ),
    Option(
        "wrong_secrets_per_key_per_minute",
        int,
        10,
        "Wrong secrets per minute for one key id from one address before it gets 429.",
        mitm="nextapi_wrong_secrets_per_key",
        check=positive,
    ),
    Option(
        "wrong_secrets_per_key_ceiling_per_minute",
        int,
        100,
        "Wrong secrets per minute for one "
        "key id from all addresses, past which each address that guessed wrong for it gets "
        "429 (the owner's address is still verified).",
        mitm="nextapi_wrong_secrets_per_key_ceiling",
        check=positive,
    ),
    Option(
        "admin_auth_failures_per_minute",
        int,
        30,
        "Wrong admin tokens per minute from one client address before the control plane "
        "answers it 429 without verifying (before any Argon2id work).",
        check=positive,
    ),
    Option(
        "suspend_after_rate_limited",
        int,
        1000,
        "A key refused this many times for its rate "
        "limits within 10 minutes is suspended (0: never).",
        check=at_least_zero,
    ),
    # --- counters shared through Redis -------------------------------------------------------
    Option(
        "redis_url",
        str,
        "",
        "redis:// URL of counters shared by several edges (rate limits, "
        "failed-auth counts, concurrency slots).",
        mitm="nextapi_redis_url",
        flag=True,
        check=url_of("redis", "rediss"),
    ),
    Option(
        "redis_prefix",
        str,
        "nextapi:",
        "Key prefix of the counters in Redis.",
        mitm="nextapi_redis_prefix",
    ),
    Option(
        "redis_failure",
        str,
        "local",
        "If Redis is unreachable: local (this edge's own "
        "counters; limits then count per edge) or closed (503 until it is back).",
        mitm="nextapi_redis_failure",
        choices=("local", "closed"),
    ),
    # --- usage, holds, policy ----------------------------------------------------------------
    Option(
        "usage_flush_interval",
        float,
        0.2,
        "Seconds within which non-durable usage records (reads) reach disk.",
        mitm="nextapi_usage_flush_interval",
        check=up_to(5),
    ),
    Option(
        "hold_seconds",
        float,
        300.0,
        "Seconds after which a credit hold whose create never answered is stale.",
        check=positive,
    ),
    Option(
        "hold_sweep_interval",
        float,
        60.0,
        "Seconds between sweeps of stale holds (the "
        "upstream's tasks of such creates are found and charged first).",
        check=positive,
    ),
    Option(
        "hold_max_seconds",
        float,
        3600.0,
        "Seconds a stale hold stays held while the upstream "
        "cannot be listed (at least hold_seconds + upstream_timeout).",
        check=positive,
    ),
    Option(
        "rollup_interval",
        float,
        60.0,
        "Seconds between folds of new usage rows into the rollups the usage aggregates read.",
        check=positive,
    ),
    Option(
        "snapshot_max_age_hours",
        float,
        24.0,
        "An edge apart decides on policy its control "
        "plane confirmed within this many hours, from memory or from its file on disk after "
        "a restart; past that, keys get 503.",
        mitm="nextapi_snapshot_max_age_hours",
        check=positive,
    ),
    # --- customers: accounts from Clerk ---------------------------------------------------
    Option(
        "clerk_jwks_url",
        str,
        "",
        "Your Clerk instance's JWKS (https://<frontend-api>/.well-known/jwks.json): the keys "
        "customers' session tokens are verified with, on the customer API (or clerk_jwt_key).",
        check=url_of("http", "https"),
    ),
    Option(
        "clerk_jwt_key",
        str,
        "",
        "Instead of clerk_jwks_url: Clerk's PEM public key (the dashboard's API keys page), for "
        "verifying session tokens without fetching keys.",
    ),
    Option(
        "clerk_authorized_parties",
        list[str],
        [],
        "Comma-separated origins of the apps that sign customers in: a session token's `azp` "
        "must be one of them.",
    ),
    # --- customers: the portal (/portal/) ----------------------------------------------------
    Option(
        "portal_oidc_issuer",
        str,
        "",
        "The OpenID Connect issuer customers sign in to the portal with (e.g. Clerk's "
        "Frontend API URL); empty: /portal/ says it is not configured. Its client secret comes "
        "from `NEXTAPI_PORTAL_OIDC_CLIENT_SECRET` only.",
        check=url_of("http", "https"),
    ),
    Option(
        "portal_oidc_client_id",
        str,
        "",
        "The portal's client id at that issuer (its redirect URI: "
        "`https://<control plane>/portal/callback`).",
    ),
    Option(
        "posthog_host",
        str,
        "https://us.i.posthog.com",
        "Where product analytics go when NEXTAPI_POSTHOG_KEY is set (PostHog's EU host: "
        "https://eu.i.posthog.com): anonymized, server-side, none for who opted out.",
        check=url_of("http", "https", required=True),
    ),
    # --- retention ---------------------------------------------------------------------------
    # A period of 0 or less would purge what was just written; an interval of 0, run the purge
    # back to back.
    Option("retention_api_logs_days", int, 90, "Days API logs are kept.", check=positive),
    Option(
        "retention_billing_days",
        int,
        7 * 365 + 2,
        "Days billing records are kept.",
        check=positive,
    ),
    Option(
        "retention_closed_account_days",
        int,
        30,
        "Days a closed account's data is kept.",
        check=positive,
    ),
    Option(
        "retention_security_events_days", int, 90, "Days security events are kept.", check=positive
    ),
    Option(
        "retention_interval_hours",
        float,
        1.0,
        "Hours between runs of the retention purge (videos, logs, closed accounts).",
        check=positive,
    ),
    # --- videos ------------------------------------------------------------------------------
    Option(
        "video_store",
        str,
        "",
        "The gateway's copies of videos: empty: <data_dir>/videos "
        "(an edge apart: none, unless given a store the control plane shares); a directory; "
        "s3://bucket/prefix?endpoint=…&region=… (credentials from NEXTAPI_S3_ACCESS_KEY_ID "
        "and NEXTAPI_S3_SECRET_ACCESS_KEY); off: the upstream's 24-hour links pass through.",
    ),
    Option(
        "video_link_hours",
        float,
        24.0,
        "Hours one signed video link works (never past retention).",
        check=positive,
    ),
    Option(
        "video_chunk_bytes",
        int,
        8 * MIB,
        "Most bytes of a video sent for one range request (players ask again for more).",
        mitm="nextapi_video_chunk_bytes",
        check=positive,
    ),
    Option(
        "video_max_bytes",
        int,
        512 * MIB,
        "Largest video the gateway copies (Seedance's are 2-12 s: tens of MB at most).",
        check=positive,
    ),
)

BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
BY_MITM: dict[str, Option] = {option.mitm: option for option in OPTIONS if option.mitm}
