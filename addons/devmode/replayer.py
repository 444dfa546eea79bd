"""`--replay FILE`: caught calls answered from a cassette, offline, in recorded order."""

from __future__ import annotations

from pathlib import Path

from mitmproxy import ctx, exceptions, http

from addons.devmode import CAUGHT, SOURCE
from addons.devmode.cassette import CassetteError, ReplayBook, load
from addons.devmode.respond import answer
from proxy.errors import EdgeError

# Framing is mitmproxy's to set for the body it sends.
_FRAMING = {"content-length", "transfer-encoding", "content-encoding", "connection"}


class Replayer:
    def __init__(self) -> None:
        self.book: ReplayBook | None = None
        self.path = ""

    def load(self, loader) -> None:
        loader.add_option("dev_replay", str, "", "Answer caught calls from this cassette.")
        loader.add_option(
            "dev_replay_miss",
            str,
            "501",
            "A call the cassette has no answer for: 501, or `target` to pass it on.",
        )

    def configure(self, updated: set[str]) -> None:
        if "dev_replay_miss" in updated and ctx.options.dev_replay_miss not in ("501", "target"):
            raise exceptions.OptionsError("dev_replay_miss must be 501 or target")
        if "dev_replay" in updated:
            self.path = ctx.options.dev_replay
            try:
                self.book = ReplayBook(load(Path(self.path))) if self.path else None
            except CassetteError as exc:
                raise exceptions.OptionsError(str(exc)) from exc

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or self.book is None or CAUGHT not in flow.metadata:
            return
        request = flow.request
        path, _, query = request.path.partition("?")
        recorded = self.book.answer(request.method, path, query)
        if recorded is not None:
            headers = [(k, v) for k, v in recorded.headers if k.lower() not in _FRAMING]
            flow.response = http.Response.make(
                recorded.status,
                recorded.body,
                [(k.encode(), v.encode()) for k, v in headers],
            )
            flow.metadata[SOURCE] = "replay"
        elif ctx.options.dev_replay_miss == "501":
            message = (
                f"No recorded answer for {request.method} {request.path} in the cassette "
                f"{self.path} (recorded answers are used in order; run with --replay-miss target "
                "to pass such calls to the target)."
            )
            answer(flow, EdgeError(501, "NotRecorded", message), "miss")
