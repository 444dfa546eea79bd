"""Answering a caught flow with an error in Seedance's envelope (shared, not an addon)."""

from __future__ import annotations

import secrets

from mitmproxy import http

from addons.devmode import SOURCE
from proxy.errors import EdgeError


def answer(flow: http.HTTPFlow, error: EdgeError, source: str) -> None:
    error.headers.setdefault("x-should-retry", "false")
    request_id = "dev-" + secrets.token_hex(8)
    flow.response = http.Response.make(
        error.status, error.body(), error.response_headers(request_id)
    )
    flow.metadata[SOURCE] = source
