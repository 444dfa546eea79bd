"""The counters every usage rollup keeps, and how each is computed from one request record."""

from __future__ import annotations

from proxy.core.seedance.routes import CREATE

CREATE_ROUTE = CREATE.template

# The API shows a row's requests and errors, its latency figures (from the latency counters and
# the histograms), then its totals: a new counter goes in one of these three.
REQUEST_COUNTERS = ("requests", "errors_4xx", "errors_5xx")
TOTAL_COUNTERS = (
    "credits_reserved",
    "credits_charged",
    "tokens",
    "tasks_created",
    "tasks_succeeded",
    "bytes_in",
    "bytes_out",
)
LATENCY_COUNTERS = ("latency_count", "latency_sum")
COUNTERS = (*REQUEST_COUNTERS, *TOTAL_COUNTERS, *LATENCY_COUNTERS)


def flag(condition: str) -> str:
    """A condition as 1 or 0, to be added up (PostgreSQL sums no booleans)."""
    return f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def raw_counters(u: str = "u", t: str = "t") -> dict[str, str]:
    """Each counter as an expression over one usage row `u` (and its task `t`, joined by id).

    On a create the record's credits are the hold (reserved); on any other request they are
    what that request charged when it saw the task end, which happens only for a succeeded
    task, once per task (charges are unique per task), so that row also counts the success
    and carries the task's tokens."""
    create = f"{u}.route IS NOT DISTINCT FROM '{CREATE_ROUTE}'"
    charged = f"({u}.route IS DISTINCT FROM '{CREATE_ROUTE}' AND {u}.credits > 0)"
    return {
        "requests": "1",
        "errors_4xx": flag(f"{u}.status BETWEEN 400 AND 499"),
        "errors_5xx": flag(f"{u}.status BETWEEN 500 AND 599"),
        "credits_reserved": f"(CASE WHEN {create} THEN {u}.credits ELSE 0 END)",
        "credits_charged": f"(CASE WHEN {create} THEN 0 ELSE {u}.credits END)",
        "tokens": f"(CASE WHEN {charged} THEN COALESCE({t}.tokens, 0) ELSE 0 END)",
        "tasks_created": flag(f"{create} AND {u}.task_id IS NOT NULL AND {u}.status < 300"),
        "tasks_succeeded": flag(charged),
        "bytes_in": f"{u}.bytes_in",
        "bytes_out": f"{u}.bytes_out",
        "latency_count": flag(f"{u}.latency_ms IS NOT NULL"),
        "latency_sum": f"COALESCE({u}.latency_ms, 0)",
    }
