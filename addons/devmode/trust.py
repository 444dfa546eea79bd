"""The CA bundle a client trusts (the dev CA plus certifi's public roots) and the environment
that points a program at the proxy."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import certifi

BUNDLE_FILE = "ca-bundle.pem"
CA_CERT_FILE = "mitmproxy-ca-cert.pem"  # what mitmproxy writes into its confdir


def write_bundle(ca_cert: Path, bundle: Path) -> Path:
    """The dev CA first, then the public roots, so a client pointed at the bundle still trusts
    every host the proxy does not intercept. Rewritten only when it changed."""
    content = (
        ca_cert.read_text(encoding="ascii").strip()
        + "\n"
        + Path(certifi.where()).read_text(encoding="utf-8")
    )
    if not bundle.exists() or bundle.read_text(encoding="utf-8") != content:
        tmp = bundle.with_suffix(".tmp")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, bundle)
    return bundle


def ca_env(bundle: Path) -> dict[str, str]:
    """Trust settings alone (the local mode needs no proxy settings, only the CA)."""
    ca = str(bundle.resolve())
    return {
        "SSL_CERT_FILE": ca,
        "REQUESTS_CA_BUNDLE": ca,
        "CURL_CA_BUNDLE": ca,
        "NODE_EXTRA_CA_CERTS": ca,
    }


def proxy_env(proxy_url: str, bundle: Path) -> dict[str, str]:
    """Proxy and trust settings for a child process. Loopback stays direct (NO_PROXY) so an
    app's own local callback receiver and the target are reached without the proxy."""
    no_proxy = "localhost,127.0.0.1,::1"
    env = {"HTTPS_PROXY": proxy_url, "HTTP_PROXY": proxy_url, "NO_PROXY": no_proxy}
    env |= ca_env(bundle)
    # curl reads only the lower-case http_proxy; some tools read only lower-case names.
    env |= {"https_proxy": proxy_url, "http_proxy": proxy_url, "no_proxy": no_proxy}
    return env


def export_lines(env: dict[str, str]) -> str:
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items())
