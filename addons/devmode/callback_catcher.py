"""Task callbacks on the developer's machine: a create whose `callback_url` is local (or every
create, with `--forward-callbacks-to`) has the field taken out of the body the target sees; once
the target accepts the task, the relay watches it and delivers each status change, signed with
the dev secret (addons/devmode/callback_relay.py)."""

from __future__ import annotations

import json

from mitmproxy import ctx, http

from addons.devmode import CALLBACK_DESTINATION, CAUGHT, SOURCE
from addons.devmode.callback_relay import CallbackRelay, is_local_url
from proxy.core.seedance.routes import CREATE, match


class DevCallbacks:
    def __init__(self, relay: CallbackRelay, base_url: str) -> None:
        self.relay = relay
        self.base_url = base_url  # where the relay polls tasks: the simulator or the target

    def load(self, loader) -> None:
        loader.add_option(
            "dev_forward_callbacks_to",
            str,
            "",
            "Deliver the status changes of every caught task to this URL.",
        )

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or CAUGHT not in flow.metadata:
            return
        path = flow.request.path.partition("?")[0]
        if match(flow.request.method, path) is not CREATE:
            return
        try:
            body = json.loads(flow.request.get_content() or b"")
        except (ValueError, UnicodeDecodeError):
            return  # the target answers the bad body itself
        if not isinstance(body, dict):
            return
        url = body.get("callback_url")
        forward = ctx.options.dev_forward_callbacks_to
        local = isinstance(url, str) and is_local_url(url)
        if not forward and not local:
            return  # a public callback_url is the target's business
        flow.metadata[CALLBACK_DESTINATION] = forward or url
        if "callback_url" in body:
            del body["callback_url"]
            flow.request.set_content(json.dumps(body, ensure_ascii=False).encode())

    def response(self, flow: http.HTTPFlow) -> None:
        destination = flow.metadata.get(CALLBACK_DESTINATION)
        response = flow.response
        if (
            not destination
            or response is None
            or flow.metadata.get(SOURCE) not in ("sim", "target")
        ):
            return
        if not 200 <= response.status_code < 300:
            return
        try:
            task_id = json.loads(response.get_content() or b"").get("id")
        except (ValueError, UnicodeDecodeError, AttributeError):
            return
        if isinstance(task_id, str) and task_id:
            authorization = flow.request.headers.get("authorization", "")
            self.relay.watch(task_id, destination, self.base_url, authorization)
