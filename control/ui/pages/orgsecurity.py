"""One org's security events tab: refused authentications and addresses tied to the org,
filtered by reason, client address, key and time, paged, with the CSV."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from control.api import security
from control.ui.pages.org import org_header
from control.ui.pages.usage import as_rfc3339
from control.ui.sessions import Session
from control.ui.web import paged, render, signed_in
from proxy.core.security_events import REASONS

FILTERS = ("reason", "client_ip", "key_id", "from", "to")


@signed_in
async def security_tab(request: Request, session: Session) -> Response:
    org_id = request.path_params["org"]
    params = request.query_params
    filters = {name: params.get(name, "").strip() for name in FILTERS}
    # As the API reads them: a zone-less time from the form's datetime-local is UTC.
    query = dict(filters)
    for bound in ("from", "to"):
        if query[bound]:
            query[bound] = as_rfc3339(query[bound])
    header = await org_header(request, session, org_id)
    cursor, found = await paged(
        request, session, security.list_security_events, query={**query, "org_id": org_id}
    )
    return render(
        request,
        "org_security.html",
        session,
        **header,
        tab="security",
        found=found,
        cursor=cursor,
        filters=filters,
        csv_filters={**query, "org_id": org_id},
        reasons=sorted(REASONS),
    )
