"""The overview: requests, errors, latency and credits over a chosen range (uPlot), and the top
orgs, keys and models over it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control.aggregates import api as aggregates
from control.api import orgs
from control.http import ApiError, rfc3339
from control.ui import web
from control.ui.filters import RANGES, BadFilter, day_range, unit_for
from control.ui.sessions import Session
from control.ui.web import call, render, signed_in

CUSTOM = "custom"
TOP = 10
SORTS = {"credits": "credits_charged", "requests": "requests"}
GROUPINGS = {"orgs": "org", "keys": "org,key", "models": "model"}  # the top tables


@dataclass(frozen=True, slots=True)
class Window:
    chosen: str  # one of RANGES, or CUSTOM
    query: dict[str, str]  # from, to, interval: as the API takes them
    first: str = ""  # a custom range's dates, as typed
    last: str = ""

    @property
    def params(self) -> dict[str, str]:
        """What the page's own links carry to keep this range."""
        if self.chosen == CUSTOM:
            return {"range": CUSTOM, "from": self.first, "to": self.last}
        return {"range": self.chosen}


def window_of(request: Request) -> Window:
    """The range the page asks for; raises BadFilter for a custom range that is not one."""
    params = request.query_params
    chosen = params.get("range", "24h")
    if chosen == CUSTOM:
        days = day_range(params, required=True)
        assert days.start is not None and days.end is not None
        unit = unit_for(web.timestamp(days.end) - web.timestamp(days.start))
        query = {"from": days.start, "to": days.end, "interval": unit}
        return Window(CUSTOM, query, days.first, days.last)
    chosen = chosen if chosen in RANGES else "24h"
    seconds, unit = RANGES[chosen]
    now = time.time()
    return Window(chosen, {"from": rfc3339(now - seconds), "to": rfc3339(now), "interval": unit})


@signed_in
async def overview(request: Request, session: Session) -> Response:
    sort = request.query_params.get("sort", "credits")
    sort = sort if sort in SORTS else "credits"
    context: dict[str, Any] = {"ranges": list(RANGES), "sort": sort, "problem": None}
    try:
        window = window_of(request)
    except BadFilter as exc:
        params = request.query_params
        window = Window(CUSTOM, {}, params.get("from", ""), params.get("to", ""))
        context["problem"] = str(exc)
        return render(request, "overview.html", session, window=window, top=None, **context)
    top = await _top(request, session, window, SORTS[sort])
    context["order"] = f"-{SORTS[sort]}"  # the CSV's, as the tables'
    return render(request, "overview.html", session, window=window, top=top, **context)


async def _top(
    request: Request, session: Session, window: Window, field: str
) -> dict[str, list[dict[str, Any]]]:
    """The top orgs, keys (with their org) and models over the window, by `field`: the API
    groups, sorts and cuts each (the lean cubes answer: no percentiles)."""
    span = {"from": window.query["from"], "to": window.query["to"]}
    ask = span | {"percentiles": "false", "sort": f"-{field}", "limit": TOP}
    top = {}
    for name, group_by in GROUPINGS.items():
        query = ask | {"group_by": group_by}
        top[name] = (await call(request, session, aggregates.all_usage, query=query))["items"]
    names: dict[str, str] = {}
    for org_id in {row["org_id"] for row in top["orgs"] + top["keys"] if row["org_id"]}:
        try:
            org = await call(request, session, orgs.get_org, path_params={"org": org_id})
            names[org_id] = org["name"]
        except ApiError:  # an org purged since: its usage stays in the rollups
            names[org_id] = org_id
    for row in top["orgs"] + top["keys"]:
        row["org_name"] = names.get(row["org_id"] or "", None)
    return top


async def overview_data(request: Request) -> Response:
    """The overview's series for uPlot: columns of the usage aggregates over the range."""
    session = await web.session_of(request)
    if session is None:
        return JSONResponse({"error": "signed out"}, status_code=401)
    try:
        window = window_of(request)
    except BadFilter as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    answer = await call(request, session, aggregates.all_usage, query=window.query)
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
    window_span = {"from": web.timestamp(answer["from"]), "to": web.timestamp(answer["to"])}
    unit = window.query["interval"]
    return JSONResponse({"unit": unit, "window": window_span, "series": series})
