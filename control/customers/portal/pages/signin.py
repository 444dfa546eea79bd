"""The portal's pages: signed out, a sign-in page; signing in at the provider (login, callback);
signed in, the home page naming the person and their org; signing out (POST with CSRF)."""

from __future__ import annotations

import contextlib

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from control.customers.portal import sessions, web
from control.customers.portal.oidc import FLOW_SECONDS, Flow, SignInRefused
from control.customers.portal.web import CALLBACK, HOME, render
from control.ui.web import posted


def _secret(request: Request) -> bytes:
    # The dashboard's per-start secret; the flow's seal is labelled apart from its login MAC.
    return request.app.state.ui_secret


def not_configured(request: Request) -> Response:
    return render(request, "not_configured.html", None, 503)


async def home(request: Request) -> Response:
    rp = web.relying_party(request)
    if rp is None:
        return not_configured(request)
    session = await web.session_of(request)
    if session is None:
        return render(request, "signin.html", None)
    # Discovered (kept an hour) before the page's CSP is written, so that the sign-out form may
    # lead to the provider's end_session_endpoint wherever it is, after a restart too.
    with contextlib.suppress(SignInRefused):
        await rp.discover()
    member = await web.portal_member(
        request.app.state.control, session.identity.sub, session.org_external_id
    )
    return render(request, "home.html", session, member=member)


async def switch_org(request: Request) -> Response:
    """The organization the session acts in, among the person's own (a form of the header)."""
    session = await web.session_of(request)
    if session is None:
        return RedirectResponse(HOME, status_code=303)
    form = await posted(request)
    if not session.csrf_matches(form.get("csrf_token")):
        return render(request, "forbidden.html", session, 403)
    state = request.app.state.control
    chosen = form.get("org", "")
    if chosen not in dict(await web.portal_orgs(state, session.identity.sub)):
        return render(request, "forbidden.html", session, 403)
    await sessions.choose_org(state, session, chosen)
    return RedirectResponse(HOME, status_code=303)


async def login(request: Request) -> Response:
    rp = web.relying_party(request)
    if rp is None:
        return not_configured(request)
    if await web.session_of(request) is not None:
        return RedirectResponse(HOME, status_code=303)
    try:
        url, flow = await rp.begin(web.absolute(request, CALLBACK))
    except SignInRefused as refused:
        return render(request, "error.html", None, 502, message=refused.message)
    response = RedirectResponse(url, status_code=303)
    sealed = flow.seal(_secret(request))
    web.set_cookie(request, response, web.flow_cookie(request), sealed, CALLBACK, FLOW_SECONDS)
    return response


async def callback(request: Request) -> Response:
    rp = web.relying_party(request)
    if rp is None:
        return not_configured(request)
    flow = Flow.unseal(_secret(request), request.cookies.get(web.flow_cookie(request)))
    try:
        identity = await rp.finish(flow, dict(request.query_params))
    except SignInRefused as refused:
        response = render(request, "error.html", None, 400, message=refused.message)
    else:
        state = request.app.state.control
        previous = await web.session_of(request)
        if previous is not None:  # a new sign-in replaces the browser's session, never joins it
            await sessions.end(state, previous)
        session_id = await sessions.start(state, identity)
        response = RedirectResponse(HOME, status_code=303)
        web.set_cookie(request, response, web.session_cookie(request), session_id, "/portal")
    # One use: a replayed callback finds no flow.
    web.delete_cookie(request, response, web.flow_cookie(request), CALLBACK)
    return response


async def logout(request: Request) -> Response:
    rp = web.relying_party(request)
    if rp is None:
        return not_configured(request)
    session = await web.session_of(request)
    if session is None:
        return RedirectResponse(HOME, status_code=303)
    form = await posted(request)
    if not session.csrf_matches(form.get("csrf_token")):
        return render(request, "forbidden.html", session, 403)
    await sessions.end(request.app.state.control, session)
    # The provider's session ends too, when it has an end_session_endpoint; it sends the browser
    # back to the portal's home, signed out.
    target = rp.logout_url(web.absolute(request, HOME)) or HOME
    response = RedirectResponse(target, status_code=303)
    web.delete_cookie(request, response, web.session_cookie(request), "/portal")
    return response
