"""Which traffic is caught: TLS to the intercepted hosts is decrypted; every other connection is
tunnelled untouched (the client sees the real server's certificate)."""

from __future__ import annotations

from mitmproxy import ctx, exceptions, http, tls

from addons.devmode import APP_PATH, CAUGHT


class InterceptHosts:
    def __init__(self) -> None:
        self.hosts: frozenset[str] = frozenset()

    def load(self, loader) -> None:
        loader.add_option(
            "dev_intercept_hosts",
            str,
            "",
            "Comma-separated host names whose HTTPS the dev proxy decrypts and answers.",
        )

    def configure(self, updated: set[str]) -> None:
        if "dev_intercept_hosts" not in updated:
            return
        hosts = [h.strip().lower().rstrip(".") for h in ctx.options.dev_intercept_hosts.split(",")]
        if any(not h or "/" in h or ":" in h or " " in h for h in hosts):
            raise exceptions.OptionsError(
                f"dev_intercept_hosts must be host names, got {ctx.options.dev_intercept_hosts!r}"
            )
        self.hosts = frozenset(hosts)

    def caught(self, host: str | None) -> bool:
        return bool(host) and host.lower().rstrip(".") in self.hosts

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        sni = data.client_hello.sni
        address = data.context.server.address
        host = sni or (address[0] if address else None)
        if not self.caught(host):
            # Not ours: mitmproxy passes the bytes through without looking at them.
            data.ignore_connection = True

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        host = flow.request.pretty_host
        if self.caught(host):
            flow.metadata[CAUGHT] = host.lower().rstrip(".")
            flow.metadata[APP_PATH] = flow.request.path
