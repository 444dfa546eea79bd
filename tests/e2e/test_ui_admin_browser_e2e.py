"""The dashboard's global pages in Debian's headless Chromium against the shared gateway: the
overview's custom range, top tables and zone switch, the orgs list's figures, the audit log's
filters, the security events of a refusal at the edge, the system page's edge, and on PostgreSQL
its request log partitions."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.browser import Watched, login, shoot
from tests.e2e.harness import Gateway, Simulator
from tests.postgres import fresh_database

TASKS = "/api/v3/contents/generations/tasks"
ZONE = "Asia/Kolkata"  # UTC+05:30: every shown time moves
REQUESTS = 12


@pytest.fixture
def watched_alone(browser: Browser, fresh_gateway: Gateway) -> Iterator[Watched]:
    """A watched browser on a gateway of the test's own: the top tables rank every org, and the
    shared gateway's other tests may send more requests than this one."""
    session = Watched(browser, fresh_gateway.control_url)
    yield session
    session.close()
    assert session.errors == [], session.errors


def test_overview_custom_range_top_tables_zone_switch_and_orgs_figures(
    watched_alone: Watched, fresh_gateway: Gateway
) -> None:
    watched, gateway = watched_alone, fresh_gateway
    name = f"Top Org {secrets.token_hex(3)}"
    org = gateway.create_org(name=name)
    key = gateway.create_key(org["id"])["key"]
    with httpx.Client(base_url=gateway.edge_url, timeout=10) as edge:
        for _ in range(REQUESTS):
            answer = edge.get(TASKS, headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200, answer.text
    assert len(gateway.wait_for_records(org["id"], REQUESTS)) == REQUESTS

    page = watched.page
    page.context.new_cdp_session(page).send("Emulation.setTimezoneOverride", {"timezoneId": ZONE})
    login(page, gateway.admin_token)
    today = datetime.now(UTC).date()
    page.get_by_label("From (UTC date)").fill(str(today))
    page.get_by_label("To (UTC date, included)").fill(str(today - timedelta(days=1)))
    page.get_by_role("button", name="Show this range").click()
    expect(page.get_by_role("alert")).to_have_text(
        "The end date must be on or after the start date."
    )
    page.get_by_label("From (UTC date)").fill(str(today - timedelta(days=2)))
    page.get_by_label("To (UTC date, included)").fill(str(today))
    page.get_by_role("button", name="Show this range").click()
    expect(page.locator("#charts")).to_have_attribute("data-drawn", "true")
    page.get_by_role("link", name="requests", exact=True).click()  # top 10 by requests
    expect(page.locator("#top-orgs")).to_contain_text(name)
    expect(page.locator("#top-orgs tr", has_text=name)).to_contain_text(str(REQUESTS))
    start = page.locator("#range-shown time").first
    expect(start).to_have_text(f"{today - timedelta(days=2)} 00:00:00")
    expect(page.locator("#charts")).to_have_attribute("data-zone", "UTC")
    shoot(page, "admin-overview")

    zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert zone in (ZONE, "Asia/Calcutta"), zone  # ICU may name it by its older name
    page.get_by_role("button", name=f"Show times in my zone ({zone})").click()
    expect(start).to_have_text(f"{today - timedelta(days=2)} 05:30:00")
    expect(page.locator("#range-shown .zone")).to_have_text(zone)
    expect(page.locator("#charts")).to_have_attribute("data-zone", zone)
    expect(page.locator("#chart-requests")).to_contain_text(f"Time ({zone})")
    page.get_by_role("button", name="Show times in UTC").click()
    expect(page.locator("#chart-requests")).to_contain_text("Time (UTC)")

    page.locator("#top-orgs").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    page.goto(f"/ui/orgs?q={name.replace(' ', '+')}")
    row = page.locator("#orgs-table tr", has_text=name)
    expect(row.locator(".today")).to_have_text(str(REQUESTS))
    expect(row.locator(".spend")).to_have_text("0.000000")  # listing tasks costs nothing
    shoot(page, "admin-orgs")


def test_audit_filter_security_event_and_system_edge(watched: Watched, gateway: Gateway) -> None:
    org = gateway.create_org(name=f"Audited {secrets.token_hex(3)}")
    refused = httpx.get(
        gateway.edge_url + TASKS, headers={"Authorization": "Bearer sk-not-a-key"}, timeout=10
    )
    assert refused.status_code == 401
    request_id = refused.headers["x-request-id"]
    deadline = time.monotonic() + 15
    while request_id not in gateway.admin.get("/v1/security-events", params={"limit": 1000}).text:
        assert time.monotonic() < deadline, "the refusal never reached the control plane"
        time.sleep(0.1)

    # The embedded edge (--role all) is on /v1/system with the snapshot version it serves.
    edge_id = f"{socket.gethostname()}:{gateway.process.proc.pid}"
    system = gateway.admin.get("/v1/system").json()
    edge = next(e for e in system["edges"] if e["id"] == edge_id)
    assert edge["connected"] and edge["snapshot_version"] == system["snapshot_version"] > 0
    assert edge["spool_backlog"] is not None and edge["counters"] == "memory"

    page = watched.page
    login(page, gateway.admin_token)
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Target").fill(org["id"])
    page.get_by_label("Action").fill("org.create")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit tbody tr")).to_have_count(1)
    expect(page.locator("#audit")).to_contain_text(org["id"])
    csv = page.get_by_role("link", name="Download these admin actions as CSV")
    expect(csv).to_have_attribute(
        "href", f"/ui/download?path=%2Fv1%2Faudit&action=org.create&target={org['id']}"
    )
    shoot(page, "admin-audit")

    page.get_by_role("link", name="Security events").click()
    page.get_by_label("Reason").select_option("malformed_key")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#events")).to_contain_text(request_id)
    page.get_by_label("Reason").select_option("unknown_key")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text(request_id)).to_have_count(0)
    page.get_by_label("Reason").select_option("malformed_key")
    page.get_by_role("button", name="Filter").click()
    shoot(page, "admin-security")

    page.get_by_role("link", name="System").click()
    edge_row = page.locator("#edges tr", has_text=edge_id)
    expect(edge_row).to_contain_text("in this process")
    expect(edge_row).to_contain_text("connected")
    expect(page.locator("#snapshot-version")).to_have_text(str(system["snapshot_version"]))
    shoot(page, "admin-system")


def test_system_page_shows_the_request_logs_day_partitions_on_postgresql(
    browser: Browser, simulator: Simulator, tmp_path: Path
) -> None:
    with fresh_database() as database_url:
        gateway = Gateway(
            tmp_path / "gateway",
            simulator.url,
            simulator.api_key,
            env={"NEXTAPI_DATABASE_URL": database_url},
        )
        try:
            org = gateway.create_org(name=f"Partitioned {secrets.token_hex(3)}")
            key = gateway.create_key(org["id"])["key"]
            answer = httpx.get(
                gateway.edge_url + TASKS, headers={"Authorization": f"Bearer {key}"}, timeout=10
            )
            assert answer.status_code == 200, answer.text
            gateway.wait_for_records(org["id"], 1)
            watched = Watched(browser, gateway.control_url)
            try:
                page = watched.page
                login(page, gateway.admin_token)
                page.get_by_role("link", name="System").click()
                today = datetime.now(UTC).date()
                usage = page.locator('#log-partitions tr[data-table="usage"]')
                expect(usage).to_contain_text(str(today + timedelta(days=1)))  # made ahead
                expect(page.locator("#log-partitions tbody tr")).to_have_count(2)
                shoot(page, "admin-system-postgresql")
            finally:
                watched.close()
            assert watched.errors == [], watched.errors
        finally:
            gateway.stop()
