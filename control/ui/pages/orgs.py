"""The orgs list (searchable, paged) with each org's balance, spend this month and requests
today, and creating an org."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from control.aggregates import api as aggregates
from control.api import billing, orgs
from control.http import rfc3339
from control.ui import web
from control.ui.sessions import Session
from control.ui.web import call, paged, render, signed_in


@signed_in
async def orgs_page(request: Request, session: Session) -> Response:
    search = request.query_params.get("q", "")
    cursor, found = await paged(request, session, orgs.list_orgs, query={"q": search})
    balances = {}
    for org in found["items"]:
        balances[org["id"]] = await call(
            request, session, billing.get_balance, path_params={"org": org["id"]}
        )
    activity = await _activity(request, session, [org["id"] for org in found["items"]])
    now = datetime.now(UTC)
    month_start = rfc3339(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())
    name = "orgs_table.html" if request.headers.get("hx-request") else "orgs.html"
    return render(
        request,
        name,
        session,
        found=found,
        balances=balances,
        activity=activity,
        month_start=month_start,
        search=search,
        cursor=cursor,
    )


async def _activity(
    request: Request, session: Session, org_ids: list[str]
) -> dict[str, dict[str, int]]:
    """Credits charged since the 1st of this month and requests since midnight (both UTC) of
    each listed org: one aggregate for the whole page, by org and day."""
    activity = {org_id: {"month_credits": 0, "today_requests": 0} for org_id in org_ids}
    if not org_ids:
        return activity
    now = datetime.now(UTC)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    today = rfc3339(now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    query: dict[str, Any] = {
        "from": rfc3339(month.timestamp()),
        "to": rfc3339(now.timestamp() + 1),
        "group_by": "org,day",
        "org": ",".join(org_ids),
        "percentiles": "false",  # not shown: the lean cubes answer
    }
    answer = await call(request, session, aggregates.all_usage, query=query)
    for row in answer["items"]:
        figures = activity.get(row["org_id"])
        if figures is None:
            continue
        figures["month_credits"] += row["credits_charged"]
        if row["start"] == today:
            figures["today_requests"] += row["requests"]
    return activity


@signed_in
async def create_org(request: Request, session: Session) -> Response:
    form = await web.form_of(request, session)
    body = {"name": str(form.get("name", "")).strip(), "email": str(form.get("email", "")).strip()}
    org = await call(request, session, orgs.create_org, body=body)
    return RedirectResponse(f"/ui/orgs/{org['id']}", status_code=303)
