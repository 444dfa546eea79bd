"""A real OpenID Connect provider on loopback for the portal's tests: the npm package
oidc-provider (tests/e2e/oidc/, installed by .ci/run with `npm ci`), started as
tests/e2e/oidc/provider.mjs on a free port with one client, and a control plane whose portal
signs in against it. Accounts: user_a (Ada Lovelace), user_b, user_c; any password."""

from __future__ import annotations

import html
import json
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import ROOT, Process, address, control_process

PROVIDER_DIR = ROOT / "tests" / "e2e" / "oidc"
USER_A = ("user_a", "Ada Lovelace", "ada@example.com")


class OidcProvider:
    """provider.mjs with one confidential client (client_secret_basic)."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str],
        post_logout_redirect_uris: list[str],
    ) -> None:
        node = shutil.which("node")
        assert node, "Node.js is needed for the portal's OIDC provider: apt-get install nodejs"
        assert (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir(), (
            "oidc-provider is not installed: npm ci --prefix tests/e2e/oidc (.ci/run does it)"
        )
        self.client_id, self.client_secret = client_id, client_secret
        client = {
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uris": redirect_uris,
            "post_logout_redirect_uris": post_logout_redirect_uris,
        }
        self.process = Process(
            [node, str(PROVIDER_DIR / "provider.mjs")],
            env={"OIDC_TEST_CLIENT": json.dumps(client)},
        )
        self.issuer = address(self.process, "oidc-provider")

    def stop(self) -> None:
        self.process.stop()


def free_port() -> int:
    """A port free now: the control plane's, which the provider's client must name before
    either starts (its redirect URI)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PortalWorld:
    provider: OidcProvider
    control: Process
    control_url: str
    admin_token: str


def start_portal(data_dir: Path) -> PortalWorld:
    """The provider, then a control plane (role control) whose portal signs in with it."""
    port = free_port()
    control_url = f"http://127.0.0.1:{port}"
    provider = OidcProvider(
        "portal-" + secrets.token_hex(4),
        secrets.token_urlsafe(24),
        [f"{control_url}/portal/callback"],
        [f"{control_url}/portal/"],
    )
    token = "nat_test_" + secrets.token_urlsafe(16)
    control = control_process(
        data_dir,
        token,
        listen=f"127.0.0.1:{port}",
        env={
            "NEXTAPI_PORTAL_OIDC_ISSUER": provider.issuer,
            "NEXTAPI_PORTAL_OIDC_CLIENT_ID": provider.client_id,
            "NEXTAPI_PORTAL_OIDC_CLIENT_SECRET": provider.client_secret,
        },
    )
    try:
        assert address(control, "control") == control_url
    except AssertionError:
        control.stop()
        provider.stop()
        raise
    return PortalWorld(provider, control, control_url, token)


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalWorld]:
    world = start_portal(tmp_path_factory.mktemp("portal"))
    yield world
    world.control.stop()
    world.provider.stop()


def sign_in_without_a_browser(
    client: httpx.Client, authorization_url: str, login: str = USER_A[0]
) -> httpx.URL:
    """The provider's devInteractions as a browser goes through them (to its login form, the
    form posted, then the redirects) up to the redirect back to the client: returns that URL,
    with its code and state. `client` keeps the provider's cookies."""
    form_page = client.get(authorization_url, follow_redirects=True)
    action = re.search(r'<form[^>]*action="([^"]+)"', form_page.text)
    assert action, form_page.text
    response = client.post(
        form_page.url.join(html.unescape(action.group(1))),
        data={"prompt": "login", "login": login, "password": "any"},
    )
    while response.is_redirect:
        location = response.url.join(response.headers["location"])
        if location.path.endswith("/portal/callback"):
            return location
        response = client.get(location)
    raise AssertionError(f"the provider never sent the browser back: {response.status_code}")
