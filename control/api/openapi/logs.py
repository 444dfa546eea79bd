"""The operations on what the control plane recorded: the request log, usage aggregates, the audit
log and security events."""

from __future__ import annotations

from control.aggregates.reads import MAX_ROWS, SORTABLE
from control.aggregates.rollup import DIMENSIONS
from control.api import schemas as s
from control.api.openapi.describe import FORMAT, FROM, PAGE, TIME, TO, Op, Param, listing
from control.api.validate import NO_CONTROL_PATTERN

GROUPS = ["hour", "day", "month", *DIMENSIONS]
USAGE = (
    Param("from", TIME, "Inclusive, RFC 3339 (default: 30 days before `to`)."),
    Param("to", TIME, "Exclusive, RFC 3339 (default: now)."),
    Param(
        "group_by",
        {"type": "string", "examples": ["day,model"]},
        f"Comma-separated, any of: {', '.join(GROUPS)} (at most one time unit).",
    ),
    Param("interval", {"enum": ["hour", "day", "month"]}, "The time bucket."),
    Param("tz", {"type": "string", "examples": ["Europe/Paris"]}, "IANA zone for day/month."),
    Param(
        "percentiles",
        {"enum": ["true", "false"]},
        "`false`: the latency percentiles are left out (null), every other figure the same; "
        "grouped by no more than org, key and model, long windows then answer from lean "
        "rollups, in milliseconds.",
    ),
    Param(
        "sort",
        {"enum": [*SORTABLE, *(f"-{name}" for name in SORTABLE)]},
        "Rows by this counter, ascending, or descending with `-` first; ties by group "
        "(default: by group).",
    ),
    Param(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_ROWS},
        "Only the first rows in order: with `sort`, the top consumers (default: every row).",
    ),
    FORMAT,
)
ALL_USAGE = (
    *USAGE,
    Param(
        "org",
        {"type": "string", "examples": ["org_1a2b3c4d5e6f7a8b,org_0f1e2d3c4b5a6978"]},
        "Only these orgs: ids, comma-separated or repeated (at most 1000).",
    ),
)
AUDIT_FILTERS = tuple(
    Param(name, {"type": "string", "maxLength": 200}, f"Only entries with this {name}.")
    for name in ("action", "actor", "target")
)
SECURITY_FILTERS = tuple(
    Param(name, {"type": "string"}, "Only events with this value.")
    for name in ("client_ip", "key_id", "org_id", "reason")
)

FILTER_TEXT = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_CONTROL_PATTERN}
REQUEST_FILTERS = (
    Param(
        "key_id", {"type": "string", "pattern": "^[A-Za-z0-9]{16}$"}, "Only this key's requests."
    ),
    Param(
        "status",
        {"type": "string", "pattern": "^[1-5]([0-9]{2}|xx)$", "examples": ["404", "5xx"]},
        "Only this status code, or this class of codes.",
    ),
    Param("model", FILTER_TEXT, "Only requests for this model."),
    Param(
        "route",
        FILTER_TEXT | {"examples": ["POST /api/v3/contents/generations/tasks"]},
        "Only this route (a template, as the log shows it).",
    ),
)

OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", "/v1/orgs/{org}/requests"): listing(
        "The request log, newest first; filtered by key, status, model, route and time.",
        s.RequestPage,
        (*REQUEST_FILTERS, FROM, TO, *PAGE),
    ),
    ("GET", "/v1/orgs/{org}/usage"): Op(
        "The org's usage, aggregated.", s.Usage, query=USAGE, csv=True
    ),
    ("GET", "/v1/usage"): Op("Every org's usage, aggregated.", s.Usage, query=ALL_USAGE, csv=True),
    ("GET", "/v1/audit"): listing(
        "Admin actions, newest first.", s.AuditPage, (*AUDIT_FILTERS, FROM, TO, *PAGE)
    ),
    ("GET", "/v1/security-events"): listing(
        "Refused authentications and addresses, newest first.",
        s.SecurityEventPage,
        (*SECURITY_FILTERS, FROM, TO, *PAGE),
    ),
}
