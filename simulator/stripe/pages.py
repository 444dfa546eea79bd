"""What a customer's browser sees: the hosted checkout page, its Pay and Cancel, and the hosted
invoice (HTML and PDF). No script and no outside assets; a strict Content-Security-Policy."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from simulator.stripe.api import base_url
from simulator.stripe.checkout import complete_session
from simulator.stripe.forms import parse_form
from simulator.stripe.state import StripeState
from simulator.stripe.webhooks import Webhooks

ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())

STYLESHEET = """\
body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 4rem auto; color: #1a1a1a; }
h1 { font-size: 1.25rem; }
.amount { font-size: 2rem; font-weight: 600; margin: 1rem 0; }
.notice { padding: 0.75rem; background: #fff4d6; border-radius: 0.25rem; }
button { font-size: 1rem; padding: 0.6rem 2rem; background: #635bff; color: #fff; border: 0;
         border-radius: 0.25rem; cursor: pointer; }
a.cancel { margin-left: 1rem; }
"""


def major_units(amount: int, currency: str) -> str:
    """`500, "usd"` → `5.00 USD`; integer arithmetic, by the currency's exponent."""
    code = currency.lower()
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    sign, amount = ("-", -amount) if amount < 0 else ("", amount)
    if exponent == 0:
        return f"{sign}{amount} {code.upper()}"
    whole, fraction = divmod(amount, 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d} {code.upper()}"


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def _page(title: str, body: str, status: int = 200, form_origin: str | None = None) -> Response:
    # form-action governs the redirect after the Pay form too, so the success page's origin
    # is allowed there.
    form_action = " ".join(filter(None, ["'self'", form_origin]))
    policy = (
        f"default-src 'none'; style-src 'self'; form-action {form_action}; "
        "base-uri 'none'; frame-ancestors 'none'"
    )
    document = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="stylesheet" href="/checkout/assets/checkout.css"></head>'
        f"<body>{body}</body></html>\n"
    )
    return Response(
        document,
        status_code=status,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def _not_found(what: str) -> Response:
    return _page("Not found", f"<h1>No such {html.escape(what)}</h1>", 404)


def _summary(session: dict[str, Any]) -> str:
    names = ", ".join(
        f"{item['name']} × {item['quantity']}" if item["quantity"] > 1 else item["name"]
        for item in session["line_items_preview"]
    )
    amount = major_units(session["amount_total"], session["currency"])
    return (
        f"<h1>{html.escape(names)}</h1>"
        f'<p class="amount" data-amount="{session["amount_total"]}">{html.escape(amount)}</p>'
    )


def routes(state: StripeState, webhooks: Webhooks) -> list[Route]:
    async def stylesheet(request: Request) -> Response:
        return Response(STYLESHEET, media_type="text/css", headers={"Cache-Control": "max-age=60"})

    def session_for(request: Request) -> dict[str, Any] | None:
        found = state.find(request.path_params["id"])
        return found if found is not None and found["object"] == "checkout.session" else None

    async def checkout_page(request: Request) -> Response:
        session = session_for(request)
        if session is None:
            return _not_found("checkout session")
        if session["status"] == "complete":
            return _page(
                "Already paid",
                _summary(session) + '<p class="notice">This checkout is already paid.</p>',
            )
        cancel = session["cancel_url"]
        cancel_link = f'<a class="cancel" href="{html.escape(cancel)}">Cancel</a>' if cancel else ""
        form = (
            f'<form method="post" action="/checkout/{session["id"]}/pay">'
            f'<button type="submit">Pay</button>{cancel_link}</form>'
            "<p>Simulated test card: Visa •••• 4242. No money moves.</p>"
        )
        return _page("Pay", _summary(session) + form, form_origin=_origin(session["success_url"]))

    async def pay(request: Request) -> Response:
        session = session_for(request)
        if session is None:
            return _not_found("checkout session")
        if session["status"] == "complete":
            return _page(
                "Already paid",
                _summary(session) + '<p class="notice">This checkout '
                "is already paid; nothing was charged again.</p>",
                409,
            )
        form = parse_form((await request.body()).decode("utf-8", "replace"))
        asynchronous = form.get("async") in ("1", "true")
        complete_session(
            state, webhooks, session, base_url(state, request), asynchronous=asynchronous
        )
        target = session["success_url"] or f"/checkout/{session['id']}"
        return RedirectResponse(target.replace("{CHECKOUT_SESSION_ID}", session["id"]), 303)

    def invoice_for(request: Request) -> dict[str, Any] | None:
        found = state.find(request.path_params["id"])
        return found if found is not None and found["object"] == "invoice" else None

    async def invoice_page(request: Request) -> Response:
        invoice = invoice_for(request)
        if invoice is None:
            return _not_found("invoice")
        paid = major_units(invoice["amount_paid"], invoice["currency"])
        body = (
            f"<h1>Invoice {html.escape(invoice['number'])}</h1>"
            f'<p class="amount">{html.escape(paid)}</p>'
            f"<p>Status: {html.escape(invoice['status'])}</p>"
            f'<p><a href="{html.escape(invoice["invoice_pdf"])}">Download PDF</a></p>'
        )
        return _page(f"Invoice {invoice['number']}", body)

    async def invoice_pdf(request: Request) -> Response:
        invoice = invoice_for(request)
        if invoice is None:
            return _not_found("invoice")
        text = (
            f"Invoice {invoice['number']}  "
            f"{major_units(invoice['amount_paid'], invoice['currency'])}  {invoice['status']}"
        )
        return Response(
            tiny_pdf(text),
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{invoice["number"]}.pdf"'},
        )

    return [
        Route("/checkout/assets/checkout.css", stylesheet, methods=["GET"]),
        Route("/checkout/{id}", checkout_page, methods=["GET"]),
        Route("/checkout/{id}/pay", pay, methods=["POST"]),
        Route("/invoices/{id}", invoice_page, methods=["GET"]),
        Route("/invoices/{id}/pdf", invoice_pdf, methods=["GET"]),
    ]


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF showing one line of ASCII text, with a correct cross-reference table."""
    safe = text.encode("ascii", "replace").replace(b"\\", b"\\\\").replace(b"(", b"\\(")
    safe = safe.replace(b")", b"\\)")
    stream = b"BT /F1 14 Tf 72 720 Td (" + safe + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
