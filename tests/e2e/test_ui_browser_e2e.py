"""The dashboard in Debian's headless Chromium (playwright-python, never `playwright install`),
against the real control plane and edge on loopback. Every test fails on a console error or a
Content-Security-Policy violation; screenshots go to tests/artifacts/."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, expect

from tests.e2e.browser import Watched, axe_violations, login, shoot
from tests.e2e.harness import Gateway

TASKS = "/api/v3/contents/generations/tasks"


def test_admin_creates_an_org_and_key_and_sees_its_requests(
    watched: Watched, gateway: Gateway
) -> None:
    page = watched.page
    page.goto("/ui/login")
    shoot(page, "login")
    login(page, gateway.admin_token)
    page.get_by_role("link", name="Orgs").click()
    page.get_by_label("Name", exact=True).fill("Browser Org")
    page.get_by_label("Contact email").fill("ops@browser.example")
    page.get_by_role("button", name="Create org").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Browser Org")
    org_id = page.url.rstrip("/").rsplit("/", 1)[1]
    assert org_id.startswith("org_")
    expect(page.get_by_text("This org has no keys.")).to_be_visible()

    page.get_by_label("Key name").fill("browser key")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Secret of key").input_value()
    assert secret.startswith("nk_live_")
    shoot(page, "key-created")
    page.goto(f"/ui/orgs/{org_id}")  # shown once: never again
    assert secret not in page.content()
    expect(page.locator("#new-secret")).to_have_count(0)

    gateway.admin.post(f"/v1/orgs/{org_id}/credits", json={"amount": 5_000_000})
    through_edge = httpx.get(
        gateway.edge_url + TASKS, headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert through_edge.status_code == 200, through_edge.text
    request_id = through_edge.headers["x-request-id"]
    assert request_id in {r["id"] for r in gateway.wait_for_records(org_id, 1)}
    page.reload()
    # The request log is on the usage tab; the keys tab shows the org's facts and keys.
    expect(page.locator("#requests")).to_have_count(0)
    expect(page.locator("#balance")).to_have_text("5.000000")
    shoot(page, "org")

    key_row = page.locator("#keys tr", has_text="browser key")
    key_row.get_by_role("button", name="Revoke key browser key").click()
    expect(page.locator("#keys tr", has_text="browser key").locator(".status")).to_have_text(
        "revoked"
    )
    refused = httpx.get(
        gateway.edge_url + TASKS, headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert refused.status_code == 401

    page.get_by_role("link", name="Overview").click()
    expect(page.locator("#charts")).to_have_attribute("data-drawn", "true")
    expect(page.locator(".uplot")).to_have_count(3)
    shoot(page, "overview")
    page.get_by_role("link", name="7d").click()
    expect(page.locator("#charts")).to_have_attribute("data-drawn", "true")

    page.get_by_role("link", name="Orgs").click()
    page.get_by_label("Search by name or id").fill("Browser Org")
    expect(page.locator("#orgs-table")).to_contain_text(org_id)
    shoot(page, "orgs")

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("table")).to_contain_text("key.revoke")
    expect(page.get_by_text("Time (UTC)")).to_be_visible()
    shoot(page, "audit")


def test_a_read_only_token_sees_no_controls(watched: Watched, gateway: Gateway) -> None:
    org = gateway.create_org(name="Read Only Org")
    gateway.create_key(org["id"])
    made = gateway.admin.post("/v1/admin/tokens", json={"name": "reader", "scopes": ["read"]})
    assert made.status_code == 201, made.text
    page = watched.page
    login(page, made.json()["token"])
    page.goto(f"/ui/orgs/{org['id']}")
    expect(page.locator("#keys")).to_be_visible()
    # The only control left is signing out.
    expect(page.locator("main form")).to_have_count(0)
    expect(page.locator("main button")).to_have_count(0)
    page.goto("/ui/orgs?q=Read+Only+Org")  # the shared gateway holds other tests' orgs
    expect(page.get_by_role("button", name="Create org")).to_have_count(0)
    expect(page.locator("#orgs-table")).to_contain_text("Read Only Org")
    shoot(page, "org-read-only")


def test_logout_refuses_the_old_cookie(
    watched: Watched, browser: Browser, gateway: Gateway
) -> None:
    page = watched.page
    login(page, gateway.admin_token)
    cookies = watched.context.cookies()
    assert [c["name"] for c in cookies] == ["nextapi_session"]
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/login")

    replay = Watched(browser, gateway.control_url)
    try:
        replay.context.add_cookies(cookies)
        replay.page.goto("/ui/orgs")
        expect(replay.page).to_have_url(f"{gateway.control_url}/ui/login")
        assert replay.errors == []
    finally:
        replay.close()


def test_a_post_without_the_csrf_token_gets_403(watched: Watched, gateway: Gateway) -> None:
    page = watched.page
    login(page, gateway.admin_token)
    answer = watched.context.request.post(
        "/ui/orgs", form={"name": "Forged", "email": "f@example.com"}, max_redirects=0
    )
    assert answer.status == 403
    # The same through the page's own form, its hidden token removed.
    page.goto("/ui/orgs")
    page.evaluate("document.querySelector('form[action=\"/ui/orgs\"] [name=csrf_token]').remove()")
    page.get_by_label("Name", exact=True).fill("Forged")
    page.get_by_label("Contact email").fill("f@example.com")
    with (
        page.expect_console_message(lambda message: "403" in message.text),
        page.expect_response("**/ui/orgs") as posted,
    ):
        page.get_by_role("button", name="Create org").click()
    expect(page.get_by_role("heading", name="403 Forbidden")).to_be_visible()
    assert posted.value.status == 403
    # The refusal is the one error this page may show, and it must be that one.
    assert watched.errors == [
        f"403 {gateway.control_url}/ui/orgs",
        "Failed to load resource: the server responded with a status of 403 (Forbidden)",
    ]
    watched.errors.clear()
    found = gateway.admin.get("/v1/orgs", params={"q": "Forged"}).json()["items"]
    assert found == []


def test_the_accessibility_check_finds_what_it_should(watched: Watched, gateway: Gateway) -> None:
    """The axe check every screenshot runs is live: a control without a label, or text without
    contrast, added to a real page, is reported as serious."""
    page = watched.page
    login(page, gateway.admin_token)
    assert axe_violations(page) == []
    page.evaluate(
        """() => {
          const input = document.createElement("input");
          document.querySelector("main").append(input);
          const faint = document.createElement("p");
          faint.textContent = "faint";
          faint.style.color = "#eeeeee";
          document.querySelector("main").append(faint);
        }"""
    )
    found = " ".join(axe_violations(page))
    assert "label" in found and "color-contrast" in found, found


def test_the_dashboard_works_from_the_keyboard(watched: Watched, gateway: Gateway) -> None:
    """Sign in, move through the navigation and create an org with the keyboard alone; each
    focused control shows a visible focus ring."""
    page = watched.page
    page.goto("/ui/login")
    assert page.evaluate("document.activeElement.id") == "token"  # autofocus
    page.keyboard.type(gateway.admin_token)
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/")

    def tab_to(name: str) -> None:
        for _ in range(40):
            page.keyboard.press("Tab")
            label = page.evaluate(
                """() => {
                  const el = document.activeElement;
                  const named = el.labels && el.labels.length ? el.labels[0].textContent : null;
                  return (el.getAttribute("aria-label") || named || el.textContent || "").trim();
                }"""
            )
            if label == name:
                outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none", f"{name} has no visible focus"
                return
        raise AssertionError(f"{name} cannot be reached with Tab")

    tab_to("Orgs")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/orgs")
    tab_to("Name")
    page.keyboard.type("Keyboard Org")
    page.keyboard.press("Tab")
    page.keyboard.type("kb@example.com")
    tab_to("Create org")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Keyboard Org")
