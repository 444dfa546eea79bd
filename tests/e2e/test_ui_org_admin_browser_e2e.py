"""The org page's admin tabs in Debian's headless Chromium against the real control plane and
edge: credits granted and the ledger, a task's status and cost, a key's limits and allowlist
edited, a key rotated with grace (both secrets work through the edge meanwhile), the export
downloaded, and the account closed only on its exact name. Screenshots: tests/artifacts/."""

from __future__ import annotations

import time
import zipfile

import httpx
from playwright.sync_api import expect

from tests.e2e.browser import Watched, login, shoot
from tests.e2e.harness import TEXT_CREATE, Gateway, cost

TASKS = "/api/v3/contents/generations/tasks"


def _edge(gateway: Gateway, secret: str) -> httpx.Client:
    return httpx.Client(
        base_url=gateway.edge_url, headers={"Authorization": f"Bearer {secret}"}, timeout=15
    )


def _finished_task(gateway: Gateway, secret: str) -> dict:
    """A task created through the edge and polled there until it ended (which settles it)."""
    with _edge(gateway, secret) as edge:
        created = edge.post(TASKS, json=TEXT_CREATE)
        assert created.status_code == 200, created.text
        task_id = created.json()["id"]
        deadline = time.monotonic() + 15
        while True:
            task = edge.get(f"{TASKS}/{task_id}").json()
            if task["status"] in ("succeeded", "failed"):
                return task
            assert time.monotonic() < deadline, task
            time.sleep(0.1)


def test_billing_tasks_and_a_key_edited_and_rotated(watched: Watched, gateway: Gateway) -> None:
    org = gateway.create_org(name="Admin Tabs Org", credits=0)
    key = gateway.create_key(org["id"], name="tabs key")
    page = watched.page
    login(page, gateway.admin_token)

    # Billing: a grant typed in credits lands in the balance and the ledger exactly.
    page.goto(f"/ui/orgs/{org['id']}/billing")
    expect(page.get_by_text("No tasks for this org.")).to_be_visible()
    page.get_by_label("Amount (credits, up to 6 decimals)").fill("2.5")
    page.get_by_label("Reason (optional, kept in the ledger)").fill("browser grant")
    page.get_by_role("button", name="Grant credits").click()
    expect(page.locator("#granted")).to_have_text("Granted 2.500000 credits.")
    expect(page.locator("#balance")).to_have_text("2.500000")
    grant_row = page.locator("#ledger tbody tr", has_text="browser grant")
    expect(grant_row).to_contain_text("2.500000")
    expect(grant_row).to_contain_text("grant")

    # A task made through the edge shows with its status and what it was charged.
    task = _finished_task(gateway, key["key"])
    assert task["status"] == "succeeded", task
    charged = cost(TEXT_CREATE["model"], task["usage"]["completion_tokens"])
    page.reload()
    task_row = page.locator(f'#tasks tr[data-task="{task["id"]}"]')
    expect(task_row.locator(".status")).to_have_text("succeeded")
    expect(task_row.locator(".charged")).to_have_text(f"0.{charged:06d}")
    expect(page.locator("#ledger tbody tr", has_text=task["id"])).to_contain_text("charge")
    shoot(page, "org-billing")

    # Keys tab, then the key's own page: limits and allowlist edited and shown as saved.
    page.get_by_role("link", name="Keys", exact=True).click()
    shoot(page, "org-keys")
    page.get_by_role("link", name="Edit or rotate key tabs key").click()
    page.get_by_label("Requests per minute").fill("600")
    page.get_by_label("Concurrent tasks").fill("4")
    page.get_by_label("Spend limit (credits, up to 6 decimals; blank for none)").fill("1.25")
    page.get_by_label("Allowed IPs or CIDRs (one a line; blank for any)").fill("127.0.0.1")
    page.get_by_role("button", name="Save key settings").click()
    expect(page.locator("#saved")).to_have_text("Saved.")
    facts = page.locator("#key-facts")
    expect(facts).to_contain_text("600/min")
    expect(facts).to_contain_text("4 concurrent")
    expect(facts).to_contain_text("1.250000 a month")
    expect(facts).to_contain_text("127.0.0.1/32")
    stored = gateway.admin.get(f"/v1/keys/{key['id']}").json()
    assert stored["rate_limit"] == {"requests_per_minute": 600, "concurrent_tasks": 4}
    assert stored["allowed_ips"] == ["127.0.0.1/32"]
    assert stored["spend_limit"] == {"amount": 1_250_000, "period": "month"}
    shoot(page, "key-edit")

    # Rotation with a grace period: the new secret shown once; both secrets work meanwhile.
    page.get_by_label("Grace period for the old secret").fill("10")
    page.get_by_label("Grace period unit").select_option("minutes")
    page.get_by_role("button", name="Rotate key").click()
    expect(page.locator("#grace-until")).to_be_visible()
    secret = page.get_by_label("Secret of key").input_value()
    assert secret.startswith(f"nk_live_{key['id']}_") and secret != key["key"]
    shoot(page, "key-rotated")
    for presented in (secret, key["key"]):
        with _edge(gateway, presented) as edge:
            listed = edge.get(TASKS)
            assert listed.status_code == 200, listed.text
    page.reload()
    assert secret not in page.content()


def test_export_and_close_on_the_exact_name(watched: Watched, gateway: Gateway) -> None:
    org = gateway.create_org(name="Closing Org")
    key = gateway.create_key(org["id"])
    page = watched.page
    login(page, gateway.admin_token)
    page.goto(f"/ui/orgs/{org['id']}/account")
    shoot(page, "org-account")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download the export of Closing Org (ZIP)").click()
    download = downloading.value
    assert download.suggested_filename.startswith(f"nextapi-export-{org['id']}-")
    with zipfile.ZipFile(download.path()) as bundle:
        assert "manifest.json" in bundle.namelist() and "keys.ndjson" in bundle.namelist()

    page.get_by_label("Type the org's name, Closing Org, to confirm").fill("closing org")
    with page.expect_response(f"**/ui/orgs/{org['id']}/close") as refused:
        page.get_by_role("button", name="Close account").click()
    assert refused.value.status == 400
    expect(page.locator("#close-error")).to_contain_text("nothing was closed")
    assert gateway.admin.get(f"/v1/orgs/{org['id']}").json()["status"] == "active"
    # The refusal's 400 is the one error this page may show, and it must be that one.
    assert watched.errors == [
        f"400 {gateway.control_url}/ui/orgs/{org['id']}/close",
        "Failed to load resource: the server responded with a status of 400 (Bad Request)",
    ]
    watched.errors.clear()

    page.get_by_label("Type the org's name, Closing Org, to confirm").fill("Closing Org")
    page.get_by_role("button", name="Close account").click()
    expect(page.locator("#closed")).to_contain_text("The account is closed")
    expect(page.get_by_role("button", name="Close account")).to_have_count(0)
    assert gateway.admin.get(f"/v1/orgs/{org['id']}").json()["status"] == "closed"
    with _edge(gateway, key["key"]) as edge:
        assert edge.get(TASKS).status_code == 401
    shoot(page, "org-account-closed")
