"""What the dashboard's browser tests share: Debian's headless Chromium driven by
playwright-python (never `playwright install`), contexts that record every console error, page
error, failed resource and Content-Security-Policy violation, signing in, and screenshots
(tests/artifacts/). The `browser` and `watched` fixtures are in conftest.py."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.e2e.harness import ROOT

CHROMIUM = "/usr/bin/chromium"
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
# How long an expectation waits for the page to reach its state: a page renders in well under a
# second, but the suite's other processes share two cores with the browser.
expect.set_options(timeout=15_000)
ARTIFACTS = ROOT / "tests" / "artifacts"
# Chromium reports each CSP violation as this event; the init script (run by the browser's
# debugging protocol, outside the page's CSP) turns it into a console error the test sees.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " " + e.blockedURI);
});
"""


class Watched:
    """A browser context whose pages record console errors, page errors and CSP violations."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.base_url = base_url
        self.errors: list[str] = []
        self.context: BrowserContext = browser.new_context(
            base_url=base_url, viewport={"width": 1280, "height": 900}
        )
        self.context.add_init_script(REPORT_VIOLATIONS)
        self.page = self.new_page()

    def new_page(self) -> Page:
        page = self.context.new_page()
        page.on(
            "console",
            lambda message: message.type == "error" and self.errors.append(message.text),
        )
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        # Which resource failed (the console names none).
        page.on(
            "response",
            lambda r: r.status >= 400 and self.errors.append(f"{r.status} {r.url}"),
        )
        return page

    def loopback_only(self) -> None:
        """Refuse, and record, every request off loopback: the portal's pages and the OIDC
        provider's (and the Stripe simulator's) fetch nothing from the internet."""

        def route(found: Route) -> None:
            if urlsplit(found.request.url).hostname in LOOPBACK:
                found.continue_()
            else:
                self.errors.append(f"off loopback: {found.request.url}")
                found.abort()

        self.context.route("**/*", route)

    def close(self) -> None:
        self.context.close()


def portal_sign_in(page: Page, issuer: str, control_url: str, login: str) -> None:
    """Sign in to the portal at the OIDC provider on loopback (tests/e2e/oidc/provider.mjs),
    which takes any password, and wait to be back on the portal's home."""
    page.goto("/portal/")
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(f"{issuer}/interaction/**")
    page.locator('input[name="login"]').fill(login)
    page.locator('input[name="password"]').fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.wait_for_url(f"{control_url}/portal/")


def login(page: Page, token: str) -> None:
    page.goto("/ui/login")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/")


def shoot(page: Page, name: str) -> None:
    """Saves the page as tests/artifacts/ui-NAME.png and fails on any serious or critical
    accessibility violation axe-core finds on it: every page a test looks at is checked."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)
    violations = axe_violations(page)
    assert violations == [], f"ui-{name}: {violations}"


SERIOUS = ("serious", "critical")


def axe_violations(page: Page) -> list[str]:
    """The serious and critical accessibility violations axe-core finds on the page as shown
    (contrast, labels, names, landmarks…), one line each with the elements it names."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [
        f"{v['impact']} {v['id']}: {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in found
        if v["impact"] in SERIOUS
    ]
