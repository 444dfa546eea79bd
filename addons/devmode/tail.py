"""The live tail: one line per caught call (`--json`: one JSON object a line; `--bodies`: with
the bodies, redacted)."""

from __future__ import annotations

import sys

from mitmproxy import ctx, http

from addons.devmode import APP_PATH, CAUGHT, SOURCE
from addons.devmode.tail_lines import Call, entry, json_line, text_line


class Tail:
    def load(self, loader) -> None:
        loader.add_option("dev_tail_json", bool, False, "The tail as one JSON object a line.")
        loader.add_option("dev_tail_bodies", bool, False, "Add redacted bodies to the tail.")

    def _emit(self, flow: http.HTTPFlow, error: str | None = None) -> None:
        request, response = flow.request, flow.response
        end = response.timestamp_end if response and response.timestamp_end else None
        start = request.timestamp_start
        call = Call(
            started=start,
            method=request.method,
            host=flow.metadata[CAUGHT],
            path=flow.metadata[APP_PATH].partition("?")[0],
            status=response.status_code if response else None,
            latency_ms=((end or start) - start) * 1000,
            source=flow.metadata.get(SOURCE, "error"),
            request_body=request.get_content(strict=False) or b"",
            response_body=(response.get_content(strict=False) or b"") if response else b"",
            error=error,
        )
        record = entry(call, bodies=ctx.options.dev_tail_bodies)
        line = json_line(record) if ctx.options.dev_tail_json else text_line(record)
        print(line, file=sys.stdout, flush=True)

    def response(self, flow: http.HTTPFlow) -> None:
        if CAUGHT in flow.metadata:
            self._emit(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        if CAUGHT in flow.metadata and flow.response is None and flow.error:
            self._emit(flow, flow.error.msg)
