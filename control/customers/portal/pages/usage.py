"""The portal's usage page: requests and spend per day over the last 30 days as charts (uPlot,
fed by `usage.json` from the customer API's usage aggregates, as the dashboard's usage tab is),
and the request log of those days, paged, with its CSV. For every member of the org."""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import JSONResponse, Response

from control.customers import routes as me
from control.customers.portal.calls import Visit, customer_page
from control.http import rfc3339
from control.ui.web import timestamp

DAYS = 30
DAY = 86400


def window() -> dict[str, str]:
    """The last 30 days, ending now, as the API reads a window."""
    now = time.time()
    return {"from": rfc3339(now - DAYS * DAY), "to": rfc3339(now)}


@customer_page
async def usage_page(visit: Visit) -> Response:
    bounds = window()
    cursor, log = await visit.paged(me.list_requests, query=bounds)
    return visit.render("usage.html", log=log, cursor=cursor, bounds=bounds, days=DAYS)


@customer_page
async def usage_data(visit: Visit) -> Response:
    """The charts' series: requests and credits charged per day, a column per day with usage
    (uPlot draws the gaps as zero-free stretches of the window)."""
    query = window() | {"interval": "day", "percentiles": "false"}
    found: dict[str, Any] = await visit.call(me.get_usage, query=query)
    items = sorted(found["items"], key=lambda row: row["start"])
    return JSONResponse(
        {
            "unit": "day",
            "window": {"from": timestamp(found["from"]), "to": timestamp(found["to"])},
            "t": [timestamp(row["start"]) for row in items],
            "requests": [row["requests"] for row in items],
            "credits": [row["credits_charged"] / 1_000_000 for row in items],
        }
    )
