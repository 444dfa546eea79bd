"""The org page's activity tabs in Debian's headless Chromium, against the real control plane and
edge on loopback: requests made through the edge show in the org's usage charts and request log
(filtered, in either zone), a webhook made in the dashboard hears of a task and is redelivered
to, and a refused authentication shows among the org's security events."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from proxy.core import keys
from tests.e2e.browser import Watched, login, shoot
from tests.e2e.harness import TEXT_CREATE, Gateway, Receiver

TASKS = "/api/v3/contents/generations/tasks"
ZONE = "Asia/Tokyo"  # +09:00: every time shown moves


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def in_zone(page: Page, zone: str) -> None:
    """The page's browser believes it is in `zone` (Chromium's own emulation)."""
    page.context.new_cdp_session(page).send("Emulation.setTimezoneOverride", {"timezoneId": zone})


def test_usage_webhooks_and_security_tabs(
    watched: Watched, gateway: Gateway, receiver: Receiver
) -> None:
    org = gateway.create_org(name="Activity Org")
    org_id = org["id"]
    secret = gateway.create_key(org_id, name="activity key")["key"]
    edge = httpx.Client(
        base_url=gateway.edge_url, headers={"Authorization": f"Bearer {secret}"}, timeout=15
    )
    listed = edge.get(TASKS)
    created = edge.post(TASKS, json=TEXT_CREATE)
    missing = edge.get(f"{TASKS}/cgt-not-ours")
    assert (listed.status_code, created.status_code, missing.status_code) == (200, 200, 404)
    assert len(gateway.wait_for_records(org_id, 3)) >= 3

    page = watched.page
    in_zone(page, ZONE)
    login(page, gateway.admin_token)
    page.goto(f"/ui/orgs/{org_id}/usage")
    charts = page.locator("#org-charts")
    expect(charts).to_have_attribute("data-drawn", "true")
    expect(charts.locator(".uplot")).to_have_count(2)
    expect(charts).to_contain_text("activity key")  # the chart's legend names the key
    log = page.locator("#requests")
    for answer in (listed, created, missing):
        expect(log).to_contain_text(answer.headers["x-request-id"])
    shoot(page, "org-usage")

    # The zone switch moves the log's times and draws the charts again in the browser's zone.
    first_time = log.locator("time").first
    shown_in_utc = first_time.inner_text()
    page.get_by_role("button", name="Show times in my zone").click()
    expect(first_time).not_to_have_text(shown_in_utc)
    expect(charts).to_have_attribute("data-zone", ZONE)
    expect(page.locator("#requests th").first).to_contain_text(ZONE)
    page.get_by_role("button", name="Show times in UTC").click()
    expect(first_time).to_have_text(shown_in_utc)
    expect(charts).to_have_attribute("data-zone", "UTC")

    page.get_by_label("Status (e.g. 404 or 5xx)").fill("4xx")
    page.get_by_role("button", name="Apply").click()
    expect(log).to_contain_text(missing.headers["x-request-id"])
    expect(log).not_to_contain_text(listed.headers["x-request-id"])
    expect(log.locator("tbody tr")).to_have_count(1)
    csv_href = page.get_by_role("link", name="Download the request log as CSV").get_attribute(
        "href"
    )
    assert csv_href is not None and "status=4xx" in csv_href

    # A webhook made here hears of a task that ends; its delivery is sent again on request.
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_text("This org has no webhooks.")).to_be_visible()
    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_label("task.succeeded").check()
    page.get_by_role("button", name="Create webhook").click()
    assert page.get_by_label("Signing secret of webhook").input_value().startswith("whsec_")
    task_id = edge.post(TASKS, json=TEXT_CREATE).json()["id"]
    receiver.wait(
        lambda: (
            edge.get(f"{TASKS}/{task_id}").json()["status"] == "succeeded"
            and bool(receiver.events(task_id))
        ),
        "no task.succeeded delivery",
    )
    ((headers, _),) = receiver.events(task_id)
    event_id = headers["webhook-id"]
    page.get_by_role("link", name=receiver.url).click()
    row = page.locator(f"#deliveries tr[data-event='{event_id}']")
    expect(row).to_have_count(1)
    expect(row.locator(".response")).to_have_text("HTTP 200")
    expect(row.locator(".attempts")).to_have_text("1")
    row.get_by_role("button", name=f"Redeliver event {event_id}").click()
    receiver.wait(lambda: len(receiver.events(task_id)) == 2, "no redelivery")
    deadline = time.monotonic() + 20
    while row.count() < 2:  # the new attempt, on a reload of the page
        assert time.monotonic() < deadline, "the redelivery is not in the delivery log"
        time.sleep(0.2)
        page.reload()
    expect(row.locator(".attempts").first).to_have_text("2")
    shoot(page, "org-webhooks")

    # A wrong secret for the org's key: refused at the edge, tied to the org.
    key_id = keys.parse_key(secret).key_id
    wrong = keys.format_key("live", key_id, keys.new_secret())
    refused = httpx.get(
        gateway.edge_url + TASKS, headers={"Authorization": f"Bearer {wrong}"}, timeout=15
    )
    assert refused.status_code == 401
    refused_id = refused.headers["x-request-id"]
    until(
        lambda: any(
            e["id"] == refused_id
            for e in gateway.admin.get("/v1/security-events", params={"org_id": org_id}).json()[
                "items"
            ]
        ),
        "no security event",
    )
    page.get_by_role("navigation", name="Org").get_by_role("link", name="Security events").click()
    event_row = page.locator("#security-events tr", has_text=refused_id)
    expect(event_row.locator(".reason")).to_have_text("wrong_secret")
    page.get_by_label("Reason").select_option("revoked")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("No security events match these filters for this org.")).to_be_visible()
    page.get_by_label("Reason").select_option("wrong_secret")
    page.get_by_role("button", name="Apply").click()
    expect(event_row).to_have_count(1)
    shoot(page, "org-security")
    edge.close()
