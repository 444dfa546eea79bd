"""The customer portal's pages in Debian's headless Chromium against a real OIDC provider on
loopback (oidc-provider) and a real gateway (control plane, edge, simulator upstream), with
orgs and people provisioned by Clerk-shaped webhooks: user_a (org A's admin) signs in, creates
a key and copies its secret, uses it at the edge, sees that request in the usage page, changes
the video retention, downloads the export and signs out; user_b (org A's member) sees the keys
but no control to create, rotate or revoke one; user_c (org B's admin) never sees org A's key
or requests. Every page fails the test on a console error, a CSP violation or a request off
loopback; screenshots go to tests/artifacts/ (checked by axe-core)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests import clerk_events as ce
from tests.e2e.browser import Watched, portal_sign_in, shoot
from tests.e2e.harness import Gateway, Simulator
from tests.e2e.oidc_provider import OidcProvider, free_port

SECRET = ce.signing_secret()
TASKS = "/api/v3/contents/generations/tasks"
# The provider's accounts (tests/e2e/oidc/provider.mjs): their `sub` is the Clerk user id the
# portal looks the person up by (portal_member), so the webhooks provision these very ids.
PEOPLE = {
    "user_a": ("Ada", "Lovelace", "ada@example.com"),
    "user_b": ("Brian", "Kernighan", "brian@example.com"),
    "user_c": ("Grace", "Hopper", "grace@example.com"),
}


@dataclass
class World:
    gw: Gateway
    provider: OidcProvider
    orgs: dict[str, str] = field(default_factory=dict)  # Clerk org id -> NextAPI org id
    found: dict[str, Any] = field(default_factory=dict)  # what one test leaves the next

    def acme_key(self) -> str:
        """Org A's key "render farm": the one the admin's test made in the browser, else one made
        here through the admin API, so that each test stands on its own."""
        if "key_id" not in self.found:
            made = self.gw.admin.post(
                f"/v1/orgs/{self.orgs['org_pa']}/keys", json={"name": "render farm"}
            )
            assert made.status_code == 201, made.text
            self.found["key_id"] = made.json()["id"]
        return str(self.found["key_id"])

    def provision(self, clerk_org: str, name: str, people: dict[str, str]) -> str:
        ce.provision(
            self.gw.control_url,
            SECRET,
            clerk_org,
            {user_id: (*PEOPLE[user_id], f"org:{role}") for user_id, role in people.items()},
            name=name,
        )
        listed = self.gw.admin.get("/v1/orgs", params={"q": name}).json()["items"]
        found = [org for org in listed if org["external_id"] == clerk_org]
        self.orgs[clerk_org] = found[0]["id"]
        return found[0]["id"]


@pytest.fixture(scope="module")
def world(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    port = free_port()  # the provider's client names the portal's callback before it starts
    control_url = f"http://127.0.0.1:{port}"
    provider = OidcProvider(
        "portal-" + secrets.token_hex(4),
        secrets.token_urlsafe(24),
        [f"{control_url}/portal/callback"],
        [f"{control_url}/portal/"],
    )
    gw = Gateway(
        tmp_path_factory.mktemp("portal-pages"),
        simulator.url,
        simulator.api_key,
        "--control-listen",  # the last one given wins: the port the provider expects
        f"127.0.0.1:{port}",
        env={
            "NEXTAPI_CLERK_WEBHOOK_SECRET": SECRET,
            "NEXTAPI_PORTAL_OIDC_ISSUER": provider.issuer,
            "NEXTAPI_PORTAL_OIDC_CLIENT_ID": provider.client_id,
            "NEXTAPI_PORTAL_OIDC_CLIENT_SECRET": provider.client_secret,
        },
    )
    assert gw.control_url == control_url
    found = World(gw, provider)
    found.provision("org_pa", "Acme Studios", {"user_a": "admin", "user_b": "member"})
    found.provision("org_pb", "Bravo Films", {"user_c": "admin"})
    yield found
    gw.stop()
    provider.stop()


@pytest.fixture
def watched_portal(browser: Browser, world: World) -> Iterator[Watched]:
    session = Watched(browser, world.gw.control_url)
    session.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=world.gw.control_url
    )

    session.loopback_only()
    yield session
    session.close()
    assert session.errors == [], session.errors


def sign_in(page: Page, world: World, login: str) -> None:
    portal_sign_in(page, world.provider.issuer, world.gw.control_url, login)


def edge_status(world: World, secret: str) -> int:
    response = httpx.get(
        world.gw.edge_url + TASKS, headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    return response.status_code


def test_an_admin_creates_a_key_uses_it_sees_it_in_usage_and_changes_settings(
    watched_portal: Watched, world: World
) -> None:
    page = watched_portal.page
    sign_in(page, world, "user_a")
    expect(page.locator("#org-name")).to_have_text("Acme Studios")
    expect(page.locator("#org-role")).to_have_text("admin")
    shoot(page, "portal-pages-home")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys of Acme Studios")
    page.get_by_label("Name").fill("render farm")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New key render farm")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("The secret is on your clipboard.")
    secret = page.evaluate("navigator.clipboard.readText()")
    assert secret == page.locator("#new-secret").input_value()
    assert secret.startswith("nk_live_")
    shoot(page, "portal-pages-key-created")

    deadline = time.monotonic() + 10  # the edge learns of the key from its next snapshot
    while (status := edge_status(world, secret)) != 200:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    key_id = secret.split("_")[2]
    world.found["key_id"] = key_id

    page.get_by_role("link", name="Back to the keys").click()
    expect(page.locator("#keys")).to_contain_text(key_id)
    expect(page.locator("#keys")).not_to_contain_text(secret)  # shown once only
    shoot(page, "portal-pages-keys-admin")

    deadline = time.monotonic() + 15  # the edge reports its requests in batches
    while True:
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
        if page.locator("#requests").count() and key_id in page.locator("#requests").inner_text():
            break
        assert time.monotonic() < deadline, "the edge's request never reached the usage page"
        time.sleep(0.5)
    expect(page.locator("#requests")).to_contain_text(TASKS.removeprefix("/api/v3"))
    expect(page.locator("#usage-charts")).to_have_attribute("data-drawn", "true")
    expect(page.locator("#chart-requests canvas")).to_have_count(1)
    expect(page.get_by_role("link", name="Download the request log as CSV")).to_be_visible()
    shoot(page, "portal-pages-usage")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Billing").click()
    expect(page.locator("#balance")).to_be_visible()
    shoot(page, "portal-pages-billing")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    retention = page.get_by_label("Keep videos for")
    low, high = int(retention.get_attribute("min") or 0), int(retention.get_attribute("max") or 0)
    chosen = max(low, min(high, 3))
    retention.fill(str(chosen))
    page.get_by_role("button", name="Save retention").click()
    expect(page.locator("#saved")).to_have_text("Saved.")
    expect(page.locator("#retention-days")).to_have_text(str(chosen))
    org = world.gw.admin.get(f"/v1/orgs/{world.orgs['org_pa']}").json()
    assert org["video_retention_days"] == chosen
    shoot(page, "portal-pages-settings-admin")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download the export (ZIP)").click()
    export = downloading.value
    assert export.suggested_filename.endswith(".zip")
    with open(export.path(), "rb") as bundle:
        assert bundle.read(2) == b"PK"

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{world.provider.issuer}/session/end**")
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(f"{world.gw.control_url}/portal/")
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    page.goto("/portal/keys")  # signed out: sent home to sign in
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    cookies = {c["name"] for c in watched_portal.context.cookies(world.gw.control_url)}
    assert cookies <= {"nextapi_portal"}  # essential cookies only, and none left signed out


def test_a_member_sees_the_keys_and_no_write_controls(
    watched_portal: Watched, world: World
) -> None:
    key_id = world.acme_key()
    page = watched_portal.page
    sign_in(page, world, "user_b")
    expect(page.locator("#org-role")).to_have_text("member")
    page.goto("/portal/keys")
    expect(page.locator("#keys")).to_contain_text(key_id)
    expect(page.locator("#read-only")).to_be_visible()
    for control in ("Create key", "Rotate render farm", "Save allowlist"):
        expect(page.get_by_role("button", name=control)).to_have_count(0)
    expect(page.get_by_role("link", name="Revoke render farm")).to_have_count(0)
    shoot(page, "portal-pages-keys-member")
    page.goto("/portal/settings")
    expect(page.get_by_role("button", name="Save retention")).to_have_count(0)
    expect(page.get_by_role("button", name="Close the account")).to_have_count(0)
    expect(page.get_by_role("button", name="Save my choice")).to_be_visible()
    shoot(page, "portal-pages-settings-member")


def test_another_orgs_admin_never_sees_org_as_key_or_requests(
    watched_portal: Watched, world: World
) -> None:
    key_id = world.acme_key()
    page = watched_portal.page
    sign_in(page, world, "user_c")
    expect(page.locator("#org-name")).to_have_text("Bravo Films")
    page.goto("/portal/keys")
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys of Bravo Films")
    assert key_id not in page.content()
    page.goto("/portal/usage")
    expect(page.locator("#usage-charts")).to_have_attribute("data-drawn", "empty")
    assert key_id not in page.content()
    shoot(page, "portal-pages-usage-other-org")
    path = f"/portal/keys/{key_id}/revoke"
    response = page.goto(path)
    assert response is not None and response.status == 404  # as if it did not exist
    expect(page.get_by_role("alert")).to_contain_text("not found")
    for error in (
        f"404 {world.gw.control_url}{path}",
        "Failed to load resource: the server responded with a status of 404 (Not Found)",
    ):
        assert error in watched_portal.errors, watched_portal.errors
        watched_portal.errors.remove(error)
