"""What the portal's pages for a signed-in customer share: who they are (the session's person,
as a member of their org: `portal_member`), and calls to the customer API's own handlers
(control/customers/routes.py) in-process as them, so that every page reads and writes under
the same checks as the API (scoped to the org; members read, admins write)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Unpack

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from control.api import inprocess
from control.api.inprocess import Handler, Target
from control.customers.access import SESSION_CUSTOMER, Customer
from control.customers.portal import web
from control.customers.portal.sessions import PortalSession
from control.customers.portal.web import HOME, PortalMember, render
from control.http import ApiError
from control.ui.web import PAGE_SIZE, posted


@dataclass(frozen=True, slots=True)
class Visit:
    """A signed-in customer's request to a page: their session, org membership and the
    customer the API's handlers are called as."""

    request: Request
    session: PortalSession
    member: PortalMember
    customer: Customer

    @property
    def is_admin(self) -> bool:
        return self.customer.is_admin

    def render(self, name: str, status_code: int = 200, **context: Any) -> Response:
        return render(self.request, name, self.session, status_code, member=self.member, **context)

    async def invoke(self, handler: Handler, **target: Unpack[Target]) -> Response:
        """The customer route's answer, called as this customer (the scope key that
        `customer_for` takes first)."""
        caller = {SESSION_CUSTOMER: self.customer}
        return await inprocess.invoke_as(self.request, caller, handler, **target)

    async def call(self, handler: Handler, **target: Unpack[Target]) -> Any:
        """The customer route's JSON answer; an error answer raises ApiError."""
        return inprocess.answer_of(await self.invoke(handler, **target))

    async def paged(
        self, handler: Handler, query: dict[str, Any] | None = None, cursor_param: str = "cursor"
    ) -> tuple[str | None, Any]:
        """One page of a list, from the cursor in the page's own query (under `cursor_param`);
        returns that cursor (for the pager) and the page."""
        cursor = self.request.query_params.get(cursor_param)
        page_query = {**(query or {}), "cursor": cursor, "limit": PAGE_SIZE}
        return cursor, await self.call(handler, query=page_query)

    async def form(self) -> Mapping[str, str]:
        """The posted form, once its CSRF token matches the session's."""
        form = await posted(self.request)
        if not self.session.csrf_matches(form.get("csrf_token")):
            raise Forbidden
        return form


class Forbidden(Exception):
    """A posted form without the session's CSRF token."""


Page = Callable[[Visit], Awaitable[Response]]


def customer_page(page: Page) -> Callable[[Request], Awaitable[Response]]:
    """A page for a signed-in member of an org: signed out (or linked to no org yet), the
    browser goes home, which says which; the API's refusals become a page saying why."""

    @functools.wraps(page)
    async def handler(request: Request) -> Response:
        if web.relying_party(request) is None:
            return render(request, "not_configured.html", None, 503)
        session = await web.session_of(request)
        if session is None:
            return RedirectResponse(HOME, status_code=303)
        member = await web.portal_member(
            request.app.state.control, session.identity.sub, session.org_external_id
        )
        if member is None:
            return RedirectResponse(HOME, status_code=303)
        role = "admin" if member.role == "admin" else "member"
        customer = Customer(session.identity.sub, member.clerk_org_id, member.org_id, role)
        visit = Visit(request, session, member, customer)
        try:
            return await page(visit)
        except Forbidden:
            return visit.render("forbidden.html", 403)
        except ApiError as refused:
            return visit.render(
                "refused.html", refused.status, status=refused.status, message=refused.message
            )

    return handler
