"""`--record FILE`: every caught exchange the target answered, appended to a cassette, redacted."""

from __future__ import annotations

from pathlib import Path

from mitmproxy import ctx, exceptions, http

from addons.devmode import APP_AUTHORIZATION, APP_PATH, CAUGHT, SOURCE
from addons.devmode.cassette import CassetteWriter

_FRAMING = {"content-length", "transfer-encoding", "content-encoding", "connection"}


class Recorder:
    def __init__(self) -> None:
        self.writer: CassetteWriter | None = None

    def load(self, loader) -> None:
        loader.add_option("dev_record", str, "", "Write caught exchanges to this cassette.")

    def configure(self, updated: set[str]) -> None:
        if "dev_record" not in updated:
            return
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if ctx.options.dev_record:
            try:
                self.writer = CassetteWriter(Path(ctx.options.dev_record))
            except OSError as exc:
                raise exceptions.OptionsError(f"cannot write the cassette: {exc}") from exc

    def response(self, flow: http.HTTPFlow) -> None:
        if self.writer is None or CAUGHT not in flow.metadata or flow.response is None:
            return
        if flow.metadata.get(SOURCE) not in ("sim", "target"):
            return  # only what a target answered is worth replaying
        request, response = flow.request, flow.response
        path, _, query = flow.metadata[APP_PATH].partition("?")
        headers = [(k, v) for k, v in request.headers.items(multi=True)]
        if APP_AUTHORIZATION in flow.metadata:
            headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
            headers.append(("authorization", flow.metadata[APP_AUTHORIZATION]))
        self.writer.write(
            method=request.method,
            host=flow.metadata[CAUGHT],
            path=path,
            query=query,
            request_headers=headers,
            request_body=request.get_content(strict=False) or b"",
            status=response.status_code,
            response_headers=[
                (k, v) for k, v in response.headers.items(multi=True) if k.lower() not in _FRAMING
            ],
            response_body=response.get_content(strict=False) or b"",
        )

    def done(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
