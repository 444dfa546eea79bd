"""The org page's activity tabs over the in-process control plane: usage (charts' data and the
filtered request log), webhooks (create, disable, delete, redeliver) and security events."""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from control.api.usage import store_usage
from tests.unit.conftest import Control, ControlRunner
from tests.unit.control.test_control_misc import record
from tests.unit.control.test_ui import _csrf, _login
from tests.unit.control.test_webhook_deliveries import seed_deliveries


def links(page: httpx.Response, text: str) -> list[dict[str, list[str]]]:
    """The query of every link on the page whose text starts with `text`."""
    found = re.findall(r'<a[^>]*href="([^"]+)"[^>]*>\s*' + re.escape(text), page.text)
    return [parse_qs(urlsplit(html.unescape(href)).query) for href in found]


async def seed_log(ctl: Control) -> dict[str, Any]:
    org = await ctl.create_org(name="Busy")
    key = await ctl.create_key(org["id"], name="main")
    now = time.time()
    await store_usage(
        ctl.st,
        [
            record(f"req_ok{n:02d}", now - 600 + n, org["id"], key_id=key["id"], status=200)
            for n in range(30)
        ]
        + [
            record("req_bad", now - 60, org["id"], key_id=key["id"], status=404),
            record("req_boom", now - 50, org["id"], key_id=key["id"], status=502, model="m-2"),
        ],
    )
    return {"org": org, "key": key, "path": f"/ui/orgs/{org['id']}/usage"}


def test_the_request_log_is_filtered_and_keeps_its_filters(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        seeded = await seed_log(ctl)
        await _login(ctl)
        everything = await ctl.get(seeded["path"], token=None)
        assert everything.status_code == 200, everything.text
        assert "req_boom" in everything.text and "Next page" in everything.text

        errors = await ctl.get(seeded["path"], token=None, params={"status": "4xx"})
        assert "req_bad" in errors.text and "req_boom" not in errors.text
        assert "req_ok" not in errors.text

        filters = {"status": "2xx", "key_id": seeded["key"]["id"], "range": "7d"}
        first = await ctl.get(seeded["path"], token=None, params=filters)
        assert "req_ok29" in first.text and "req_bad" not in first.text
        (next_page,) = links(first, "Next page")
        assert next_page["status"] == ["2xx"] and next_page["key_id"] == [seeded["key"]["id"]]
        assert next_page["range"] == ["7d"] and next_page["cursor"]
        second = await ctl.get(
            seeded["path"], token=None, params={k: v[0] for k, v in next_page.items()}
        )
        assert "req_ok00" in second.text and "req_ok29" not in second.text
        assert "req_bad" not in second.text

        (csv_link,) = links(first, "Download")
        assert csv_link["path"] == [f"/v1/orgs/{seeded['org']['id']}/requests"]
        assert csv_link["status"] == ["2xx"] and csv_link["from"] and csv_link["to"]
        csv = await ctl.get(
            "/ui/download", token=None, params={k: v[0] for k, v in csv_link.items()}
        )
        assert csv.status_code == 200 and "req_ok00" in csv.text and "req_bad" not in csv.text

        # A custom window that holds none of them, from the form's datetime-local fields.
        old = await ctl.get(
            seeded["path"],
            token=None,
            params={"from": "2020-01-01T00:00", "to": "2020-01-02T00:00"},
        )
        assert old.status_code == 200 and "No requests in this window." in old.text

    control_plane(body)


def test_bad_filters_show_a_readable_error_page(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        seeded = await seed_log(ctl)
        org_id = seeded["org"]["id"]
        await _login(ctl)
        for path, params, field in [
            (seeded["path"], {"status": "teapot"}, "status"),
            (seeded["path"], {"key_id": "nope"}, "key_id"),
            (seeded["path"], {"from": "yesterday"}, "from"),
            (seeded["path"], {"from": "2025-01-02T00:00", "to": "2025-01-01T00:00"}, "from"),
            (f"/ui/orgs/{org_id}/usage.json", {"to": "soon"}, "to"),
            (f"/ui/orgs/{org_id}/security", {"client_ip": "not-an-ip"}, "client_ip"),
            (f"/ui/orgs/{org_id}/security", {"reason": "bored"}, "reason"),
        ]:
            page = await ctl.get(path, token=None, params=params)
            assert page.status_code == 400, (path, params, page.text)
            alert = re.search(r'role="alert">([^<]*)<', page.text)
            assert alert and f"`{field}`" in alert.group(1), page.text

    control_plane(body)


def test_the_usage_charts_data_groups_by_key_and_model(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        seeded = await seed_log(ctl)
        await _login(ctl)
        answer = await ctl.get(f"/ui/orgs/{seeded['org']['id']}/usage.json", token=None)
        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data["unit"] == "hour" and data["t"]
        assert data["window"]["to"] - data["window"]["from"] >= 86400 - 900
        ((key_series),) = data["requests_by_key"]
        assert key_series["label"] == f"main ({seeded['key']['id']})"
        assert sum(key_series["data"]) == 32 and len(key_series["data"]) == len(data["t"])
        by_model = {s["label"]: sum(s["data"]) for s in data["credits_by_model"]}
        assert by_model == {"seedance-1-0-pro": 31 * 1.5, "m-2": 1.5}
        assert (await ctl.get(f"/ui/orgs/{seeded['org']['id']}/usage.json", token=None,
                              params={"range": "90d"})).json()["unit"] == "day"  # fmt: skip
        ctl.client.cookies.clear()  # type: ignore[union-attr]
        signed_out = await ctl.get(f"/ui/orgs/{seeded['org']['id']}/usage.json", token=None)
        assert signed_out.status_code == 401

    control_plane(body)


def test_webhook_posts_need_the_csrf_token(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        seeded = await seed_deliveries(ctl, events=1)
        org_id, hook_id = seeded["org"]["id"], seeded["hook"]["id"]
        base = f"/ui/orgs/{org_id}/webhooks"
        await _login(ctl)
        posts = {
            base: {"url": "https://other.example.test/in"},
            f"{base}/{hook_id}/deliveries/msg_0/redeliver": {},
            f"{base}/{hook_id}/delete": {"confirm": hook_id},
            f"{base}/{hook_id}/status": {"status": "disabled"},
        }
        for path, form in posts.items():
            for token in ({}, {"csrf_token": "forged"}):
                refused = await ctl.post(path, token=None, data=form | token)
                assert refused.status_code == 403, path
        hooks = await ctl.rows("SELECT url, status FROM webhooks")
        assert hooks == [{"url": "https://hooks.example.test/in", "status": "enabled"}]
        events = await ctl.rows("SELECT status FROM webhook_events")
        assert events == [{"status": "delivered"}]

    control_plane(body)


def test_webhooks_are_created_redelivered_disabled_and_deleted(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        seeded = await seed_deliveries(ctl, events=1)
        org_id, hook_id = seeded["org"]["id"], seeded["hook"]["id"]
        base = f"/ui/orgs/{org_id}/webhooks"
        await _login(ctl)
        tab = await ctl.get(base, token=None)
        assert hook_id in tab.text and "task.succeeded" in tab.text
        made = await ctl.post(
            base,
            token=None,
            data={
                "url": "https://second.example.test/in",
                "event:task.failed": "on",
                "csrf_token": _csrf(tab),
            },
        )
        assert made.status_code == 200, made.text
        secret = re.search(r'id="new-secret" readonly value="(whsec_[^"]+)"', made.text)
        assert secret, made.text
        assert secret.group(1) not in (await ctl.get(base, token=None)).text  # shown once
        (second,) = await ctl.rows("SELECT events FROM webhooks WHERE url LIKE '%second%'")
        assert second["events"] == '["task.failed"]'

        page = await ctl.get(f"{base}/{hook_id}", token=None)
        (csv_link,) = links(page, "Download")
        csv = await ctl.get(
            "/ui/download", token=None, params={k: v[0] for k, v in csv_link.items()}
        )
        assert csv.status_code == 200 and csv.text.count("msg_0,task.succeeded") == 2
        assert (
            page.text.count('aria-label="Redeliver event msg_0"') == 2 and "HTTP 500" in page.text
        )
        again = await ctl.post(
            f"{base}/{hook_id}/deliveries/msg_0/redeliver",
            token=None,
            data={"csrf_token": _csrf(page)},
        )
        assert again.status_code == 303 and again.headers["location"] == f"{base}/{hook_id}"
        assert await ctl.rows("SELECT status FROM webhook_events") == [{"status": "pending"}]

        disabled = await ctl.post(
            f"{base}/{hook_id}/status",
            token=None,
            data={"status": "disabled", "csrf_token": _csrf(page)},
        )
        assert disabled.status_code == 303
        assert "Enable webhook" in (await ctl.get(f"{base}/{hook_id}", token=None)).text
        unconfirmed = await ctl.post(
            f"{base}/{hook_id}/delete", token=None, data={"confirm": "", "csrf_token": _csrf(page)}
        )
        assert unconfirmed.status_code == 400
        deleted = await ctl.post(
            f"{base}/{hook_id}/delete",
            token=None,
            data={"confirm": hook_id, "csrf_token": _csrf(page)},
        )
        assert deleted.status_code == 303
        assert hook_id not in (await ctl.get(base, token=None)).text
        assert (await ctl.get(f"{base}/{hook_id}", token=None)).status_code == 404

    control_plane(body)


def test_a_read_only_session_sees_no_forms_on_the_activity_tabs(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        seeded = await seed_deliveries(ctl, events=1)
        org_id, hook_id = seeded["org"]["id"], seeded["hook"]["id"]
        reader = await ctl.create_admin_token(["read"])
        await _login(ctl, reader["token"])
        for path in (
            f"/ui/orgs/{org_id}/webhooks",
            f"/ui/orgs/{org_id}/webhooks/{hook_id}",
            f"/ui/orgs/{org_id}/usage",
            f"/ui/orgs/{org_id}/security",
        ):
            page = await ctl.get(path, token=None)
            assert page.status_code == 200, path
            main = page.text.split("<main>", 1)[1]
            assert 'method="post"' not in main, path
        detail = await ctl.get(f"/ui/orgs/{org_id}/webhooks/{hook_id}", token=None)
        assert "msg_0" in detail.text and "Redeliver" not in detail.text

    control_plane(body)


def test_the_security_tab_shows_only_the_orgs_events(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org(name="Watched")
        other = await ctl.create_org(name="Other")
        now = time.time()

        def event(request_id: str, org_id: str, reason: str, ip: str = "192.0.2.7") -> dict:
            return {"kind": "security", "request_id": request_id, "ts": now, "client_ip": ip,
                    "key_id": "AAAAAAAAAAAAAAAA", "org_id": org_id, "reason": reason,
                    "status": 401, "route": "GET /x"}  # fmt: skip

        await store_usage(
            ctl.st,
            [
                event("req_s1", org["id"], "wrong_secret"),
                event("req_s2", org["id"], "revoked", ip="192.0.2.8"),
                event("req_s3", other["id"], "revoked"),
            ],
        )
        await _login(ctl)
        path = f"/ui/orgs/{org['id']}/security"
        page = await ctl.get(path, token=None)
        assert "req_s1" in page.text and "req_s2" in page.text and "req_s3" not in page.text
        revoked = await ctl.get(path, token=None, params={"reason": "revoked"})
        assert "req_s2" in revoked.text and "req_s1" not in revoked.text
        (csv_link,) = links(revoked, "Download")
        assert csv_link["org_id"] == [org["id"]] and csv_link["reason"] == ["revoked"]
        by_ip = await ctl.get(path, token=None, params={"client_ip": "192.0.2.7"})
        assert "req_s1" in by_ip.text and "req_s2" not in by_ip.text
        empty = await ctl.get(f"/ui/orgs/{other['id']}/security", token=None,
                              params={"reason": "wrong_secret"})  # fmt: skip
        assert "No security events match these filters" in empty.text

    control_plane(body)
