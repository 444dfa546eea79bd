"""The overview: requests, errors, latency and credits over a chosen range (uPlot)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.api import aggregates
from control.http import rfc3339
from control.ui import web
from control.ui.sessions import Session
from control.ui.web import call, render, signed_in

# The overview's ranges: how far back, and the bucket each point stands for.
RANGES = {"24h": (86400, "hour"), "7d": (7 * 86400, "hour"), "30d": (30 * 86400, "day")}
RANGES["90d"] = (90 * 86400, "day")


@signed_in
async def overview(request: Request, session: Session) -> Response:
    chosen = request.query_params.get("range", "24h")
    chosen = chosen if chosen in RANGES else "24h"
    return render(request, "overview.html", session, ranges=list(RANGES), chosen=chosen)


async def overview_data(request: Request) -> Response:
    """The overview's series for uPlot: columns of the usage aggregates over the range."""
    session = await web.session_of(request)
    if session is None:
        return JSONResponse({"error": "signed out"}, status_code=401)
    seconds, unit = RANGES.get(request.query_params.get("range", "24h"), RANGES["24h"])
    now = time.time()
    query = {"from": rfc3339(now - seconds), "to": rfc3339(now), "interval": unit}
    answer = await call(request, session, aggregates.all_usage, query=query)
    series: dict[str, list[Any]] = {
        name: []
        for name in ("t", "requests", "errors", "p50", "p95", "credits")  # uPlot's columns
    }
    for row in answer["items"]:
        series["t"].append(web.timestamp(row["start"]))
        series["requests"].append(row["requests"])
        series["errors"].append(row["errors_4xx"] + row["errors_5xx"])
        series["p50"].append(row["latency_p50_ms"])
        series["p95"].append(row["latency_p95_ms"])
        series["credits"].append(row["credits_charged"] / 1_000_000)
    window = {"from": web.timestamp(answer["from"]), "to": web.timestamp(answer["to"])}
    return JSONResponse({"unit": unit, "window": window, "series": series})
