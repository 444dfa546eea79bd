"""Sends every caught call to the target: the in-process simulator, or the URL the developer
named (with `--key`, the app's Authorization is replaced by the developer's NextAPI key)."""

from __future__ import annotations

import urllib.parse

from mitmproxy import ctx, exceptions, http

from addons.devmode import APP_AUTHORIZATION, CAUGHT, SOURCE


class TargetRouter:
    def load(self, loader) -> None:
        loader.add_option("dev_target", str, "", "Base URL caught calls are sent to.")
        loader.add_option(
            "dev_target_is_sim", bool, True, "The target is the dev proxy's own simulator."
        )
        loader.add_option(
            "dev_target_key", str, "", "Replaces the app's Authorization (Bearer KEY)."
        )

    def configure(self, updated: set[str]) -> None:
        if "dev_target" in updated and ctx.options.dev_target:
            parts = urllib.parse.urlsplit(ctx.options.dev_target)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise exceptions.OptionsError("dev_target must be an http(s) URL")

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or CAUGHT not in flow.metadata or not ctx.options.dev_target:
            return
        target = urllib.parse.urlsplit(ctx.options.dev_target)
        request = flow.request
        app_authorization = request.headers.get("authorization")
        if app_authorization is not None:
            flow.metadata[APP_AUTHORIZATION] = app_authorization
        request.scheme = target.scheme
        request.host = target.hostname or ""
        request.port = target.port or (443 if target.scheme == "https" else 80)
        request.headers["host"] = target.netloc
        prefix = target.path.rstrip("/")
        if prefix:
            request.path = prefix + request.path
        if ctx.options.dev_target_key:
            request.headers["authorization"] = f"Bearer {ctx.options.dev_target_key}"
        flow.metadata[SOURCE] = "sim" if ctx.options.dev_target_is_sim else "target"
