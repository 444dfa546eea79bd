"""The control plane's admin auth, orgs, API keys, policy snapshots and audit log, driven over
HTTP against a real SQLite file (see conftest.py for the harness)."""

from __future__ import annotations

import ipaddress
import json
import re
import time
from datetime import datetime
from typing import Any

import pytest

from control.api.validate import MAX_GRACE_SECONDS
from proxy.core import keys as proxy_keys
from proxy.policy import Snapshot
from tests.unit.conftest import ADMIN_TOKEN, Control, ControlRunner, assert_error

KEY_RE = re.compile(r"^nk_(live|test)_([0-9A-Za-z]{16})_[0-9A-Za-z]{38}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def ts(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 string the API returned (must be UTC, `Z`)."""
    assert RFC3339_UTC.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def snapshot_key(ctl: Control, key_id: str) -> dict[str, Any]:
    (entry,) = [k for k in ctl.snapshot["keys"] if k["id"] == key_id]
    return entry


def snapshot_org(ctl: Control, org_id: str) -> dict[str, Any]:
    (entry,) = [o for o in ctl.snapshot["orgs"] if o["id"] == org_id]
    return entry


def no_hash_anywhere(text: str) -> None:
    assert "$argon2" not in text, text
    assert "secret_hash" not in text, text


# ================================================================================ admin auth


def test_no_token_is_refused_with_the_error_envelope(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        for method, path in [("GET", "/v1/orgs"), ("POST", "/v1/orgs"), ("GET", "/v1/audit")]:
            response = await ctl.request(method, path, token=None)
            assert_error(response, 401, "AuthenticationError")
        for header in ["", "Bearer", "Bearer   ", f"Basic {ADMIN_TOKEN}", ADMIN_TOKEN]:
            response = await ctl.get("/v1/orgs", token=None, headers={"Authorization": header})
            assert_error(response, 401, "AuthenticationError")

    control_plane(body)


def test_wrong_token_is_refused(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        for token in ["nat_wrong", ADMIN_TOKEN + "x", ADMIN_TOKEN[:-1], ADMIN_TOKEN.upper()]:
            response = await ctl.get("/v1/orgs", token=token)
            assert_error(response, 401, "AuthenticationError")
        # The right one still works afterwards (no lock-out of the real admin).
        assert (await ctl.get("/v1/orgs")).status_code == 200

    control_plane(body)


def test_env_token_works_from_first_start_and_is_stored_only_as_argon2id(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        response = await ctl.get("/v1/orgs")
        assert response.status_code == 200, response.text
        await ctl.create_org()  # some writes, so the WAL has content too

        rows = await ctl.rows("SELECT * FROM admin_tokens")
        assert len(rows) == 1
        (row,) = rows
        assert row["source"] == "env"
        assert row["revoked_at"] is None
        assert row["token_hash"].startswith("$argon2id$")
        assert proxy_keys.verify_secret(row["token_hash"], ADMIN_TOKEN)
        assert ADMIN_TOKEN not in json.dumps(row)

        on_disk = await ctl.stored_bytes()
        assert on_disk  # the file (and its WAL), or the tables, are really there
        assert ADMIN_TOKEN.encode() not in on_disk
        if ctl.database_url is None:
            assert (ctl.data_dir / "nextapi.sqlite3").exists()
            wal = ctl.data_dir / "nextapi.sqlite3-wal"
            assert wal.exists() and wal.stat().st_size > 0  # so the WAL was searched too

    control_plane(body)


def test_bootstrap_again_with_the_same_token_adds_nothing(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        await ctl.st.admin.bootstrap(ADMIN_TOKEN)
        rows = await ctl.rows("SELECT id FROM admin_tokens WHERE revoked_at IS NULL")
        assert len(rows) == 1
        assert (await ctl.get("/v1/orgs")).status_code == 200

    control_plane(body)


def test_second_bootstrap_with_another_token_revokes_the_first(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        assert (await ctl.get("/v1/orgs")).status_code == 200  # the old token is now cached
        new_token = "nat_rotated-env-token-5hJ2kQ"
        await ctl.st.admin.bootstrap(new_token)

        assert_error(await ctl.get("/v1/orgs"), 401, "AuthenticationError")
        assert (await ctl.get("/v1/orgs", token=new_token)).status_code == 200

        rows = await ctl.rows("SELECT * FROM admin_tokens WHERE source='env' ORDER BY created_at")
        assert len(rows) == 2
        assert rows[0]["revoked_at"] is not None
        assert proxy_keys.verify_secret(rows[0]["token_hash"], ADMIN_TOKEN)
        assert rows[1]["revoked_at"] is None
        assert new_token.encode() not in await ctl.stored_bytes()

    control_plane(body)


def test_read_scope_token_can_read_but_not_write(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        created = await ctl.post("/v1/admin/tokens", json={"name": "dashboard", "scopes": ["read"]})
        assert created.status_code == 201, created.text
        info = created.json()
        assert info["scopes"] == ["read"]
        assert info["id"] and info["token"].startswith("nat_")
        reader = info["token"]

        for path in ["/v1/orgs", f"/v1/orgs/{org['id']}", f"/v1/orgs/{org['id']}/keys"]:
            assert (await ctl.get(path, token=reader)).status_code == 200, path
        assert (await ctl.get(f"/v1/keys/{key['id']}", token=reader)).status_code == 200
        assert (await ctl.get("/v1/audit", token=reader)).status_code == 200

        version = ctl.version
        refused = [
            await ctl.post("/v1/orgs", token=reader, json={"name": "X", "email": "x@x.example"}),
            await ctl.patch(f"/v1/orgs/{org['id']}", token=reader, json={"name": "Evil"}),
            await ctl.delete(f"/v1/orgs/{org['id']}", token=reader),
            await ctl.post(f"/v1/orgs/{org['id']}/keys", token=reader, json={"name": "k"}),
            await ctl.patch(f"/v1/keys/{key['id']}", token=reader, json={"status": "suspended"}),
            await ctl.delete(f"/v1/keys/{key['id']}", token=reader),
            await ctl.post(f"/v1/keys/{key['id']}/rotate", token=reader, json={}),
            await ctl.post(
                "/v1/admin/tokens", token=reader, json={"name": "x", "scopes": ["admin"]}
            ),
        ]
        for response in refused:
            assert_error(response, 403)
        # Nothing changed.
        assert ctl.version == version
        again = (await ctl.get(f"/v1/orgs/{org['id']}")).json()
        assert again["name"] == org["name"] and again["status"] == "active"
        assert (await ctl.get(f"/v1/keys/{key['id']}")).json()["status"] == "active"
        assert reader.encode() not in await ctl.stored_bytes()

    control_plane(body)


def test_revoked_admin_token_is_refused_at_once(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        extra = await ctl.create_admin_token(["admin"])
        assert (await ctl.get("/v1/orgs", token=extra["token"])).status_code == 200  # cached now

        response = await ctl.delete(f"/v1/admin/tokens/{extra['id']}")
        assert response.status_code == 200, response.text
        assert response.json()["revoked"] is True

        assert_error(await ctl.get("/v1/orgs", token=extra["token"]), 401, "AuthenticationError")
        assert (await ctl.get("/v1/orgs")).status_code == 200  # the others keep working
        assert_error(await ctl.delete(f"/v1/admin/tokens/{extra['id']}"), 404)
        assert_error(await ctl.delete("/v1/admin/tokens/adm_nope"), 404)

    control_plane(body)


def test_admin_token_creation_is_validated(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        bad_bodies: list[dict[str, Any]] = [
            {"scopes": ["read"]},
            {"name": "", "scopes": ["read"]},
            {"name": "x", "scopes": []},
            {"name": "x", "scopes": ["write"]},
            {"name": "x", "scopes": "admin"},
            {"name": "x", "scopes": ["read"], "expires": 1},
        ]
        for bad in bad_bodies:
            assert_error(await ctl.post("/v1/admin/tokens", json=bad), 400)
        default = await ctl.post("/v1/admin/tokens", json={"name": "default"})
        assert default.status_code == 201, default.text
        assert default.json()["scopes"] == ["read"]

    control_plane(body)


def test_admin_token_with_non_string_scopes_is_a_400(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        response = await ctl.post("/v1/admin/tokens", json={"name": "x", "scopes": [["admin"]]})
        assert_error(response, 400)

    control_plane(body)


# ====================================================================================== orgs


def test_create_org_returns_201_with_fields_and_defaults(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        before = time.time()
        response = await ctl.post("/v1/orgs", json={"name": "Acme", "email": "ops@acme.example"})
        assert response.status_code == 201, response.text
        org = response.json()
        assert org["id"].startswith("org_")
        assert org["name"] == "Acme"
        assert org["email"] == "ops@acme.example"
        assert org["status"] == "active"
        assert org["video_retention_days"] == 7
        assert org["allowed_ips"] == []
        assert org["rate_limit"] == {}
        assert org["spend_limit"] is None
        assert org["closed_at"] is None
        assert before - 1 <= ts(org["created_at"]) <= time.time() + 1
        assert ts(org["updated_at"]) >= ts(org["created_at"])

        fetched = await ctl.get(f"/v1/orgs/{org['id']}")
        assert fetched.status_code == 200
        assert fetched.json() == org

        other = await ctl.create_org(name="Beta", email="b@beta.example", video_retention_days=30)
        assert other["id"] != org["id"]
        assert other["video_retention_days"] == 30

    control_plane(body)


def test_create_org_refuses_missing_or_invalid_name_and_email(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        good = {"name": "Acme", "email": "ops@acme.example"}
        cases: list[dict[str, Any]] = [
            {},
            {"name": "Acme"},
            {"email": "ops@acme.example"},
            good | {"name": ""},
            good | {"name": "   "},
            good | {"name": 42},
            good | {"name": None},
            good | {"name": "x" * 201},
            good | {"email": ""},
            good | {"email": "not-an-email"},
            good | {"email": "ops@acme"},
            good | {"email": "o ps@acme.example"},
            good | {"email": "@acme.example"},
            good | {"email": ["ops@acme.example"]},
        ]
        for case in cases:
            assert_error(await ctl.post("/v1/orgs", json=case), 400)
        # `MissingParameter` for absent required fields.
        assert_error(await ctl.post("/v1/orgs", json={"name": "Acme"}), 400, "MissingParameter")
        listed = (await ctl.get("/v1/orgs")).json()
        assert listed["items"] == []

    control_plane(body)


def test_create_org_refuses_unknown_fields(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        good = {"name": "Acme", "email": "ops@acme.example"}
        for extra in [{"nmae": "typo"}, {"id": "org_mine"}, {"credits": 5}, {"status": "active"}]:
            assert_error(await ctl.post("/v1/orgs", json=good | extra), 400, "InvalidParameter")
        assert (await ctl.get("/v1/orgs")).json()["items"] == []

    control_plane(body)


def test_org_allowed_ips_are_validated_and_normalised(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        good = {"name": "Acme", "email": "ops@acme.example"}
        for bad in [
            ["10.0.0.300"],
            ["foo"],
            ["10.0.0.0/33"],
            ["2001:db8::/129"],
            ["10.0.0.1", ""],
            [10],
            [None],
            "10.0.0.1",
            {"ip": "10.0.0.1"},
        ]:
            response = await ctl.post("/v1/orgs", json=good | {"allowed_ips": bad})
            assert_error(response, 400, "InvalidParameter")

        org = await ctl.create_org(
            allowed_ips=[
                "10.0.0.1",
                "10.1.2.3/16",
                "2001:DB8::1",
                "2001:db8:abcd::/48",
                " 192.0.2.7 ",
                "::ffff:198.51.100.1",
            ]
        )
        assert org["allowed_ips"] == [
            "10.0.0.1/32",
            "10.1.0.0/16",
            "2001:db8::1/128",
            "2001:db8:abcd::/48",
            "192.0.2.7/32",
            "198.51.100.1/32",
        ]
        assert (await ctl.get(f"/v1/orgs/{org['id']}")).json()["allowed_ips"] == org["allowed_ips"]
        empty = await ctl.create_org(allowed_ips=[])
        assert empty["allowed_ips"] == []

        patched = await ctl.patch(f"/v1/orgs/{org['id']}", json={"allowed_ips": ["fd00::/8"]})
        assert patched.status_code == 200, patched.text
        assert patched.json()["allowed_ips"] == ["fd00::/8"]
        assert_error(await ctl.patch(f"/v1/orgs/{org['id']}", json={"allowed_ips": ["x"]}), 400)
        assert (await ctl.get(f"/v1/orgs/{org['id']}")).json()["allowed_ips"] == ["fd00::/8"]

    control_plane(body)


def test_org_rate_limit_is_validated(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        good = {"name": "Acme", "email": "ops@acme.example"}
        for bad in [
            {"requests_per_minute": 0},
            {"requests_per_minute": -5},
            {"requests_per_minute": 1.5},
            {"requests_per_minute": "60"},
            {"requests_per_minute": True},
            {"requests_per_hour": 10},
            [60],
            60,
            "60/min",
        ]:
            response = await ctl.post("/v1/orgs", json=good | {"rate_limit": bad})
            assert_error(response, 400, "InvalidParameter")

        limits = {"requests_per_minute": 60, "requests_per_day": 10_000, "concurrent_tasks": 3}
        org = await ctl.create_org(rate_limit=limits)
        assert org["rate_limit"] == limits
        partial = await ctl.create_org(rate_limit={"concurrent_tasks": 2, "requests_per_day": None})
        assert partial["rate_limit"] == {"concurrent_tasks": 2}

        response = await ctl.patch(
            f"/v1/orgs/{org['id']}", json={"rate_limit": {"requests_per_minute": 0}}
        )
        assert_error(response, 400)
        response = await ctl.patch(f"/v1/orgs/{org['id']}", json={"rate_limit": {}})
        assert response.status_code == 200
        assert response.json()["rate_limit"] == {}

    control_plane(body)


def test_org_spend_limit_and_retention_are_validated(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        good = {"name": "Acme", "email": "ops@acme.example"}
        for bad in [
            {"amount": -1, "period": "day"},
            {"amount": 1.5, "period": "day"},
            {"amount": "100", "period": "day"},
            {"amount": True, "period": "day"},
            {"period": "day"},
            {"amount": 100, "period": "week"},
            {"amount": 100, "period": "day", "currency": "usd"},
            [100, "day"],
            100,
        ]:
            response = await ctl.post("/v1/orgs", json=good | {"spend_limit": bad})
            assert_error(response, 400, "InvalidParameter")
        for bad_days in [0, -1, 3651, "7", 7.5, True, None]:
            response = await ctl.post("/v1/orgs", json=good | {"video_retention_days": bad_days})
            assert_error(response, 400, "InvalidParameter")

        org = await ctl.create_org(spend_limit={"amount": 5_000_000, "period": "day"})
        assert org["spend_limit"] == {"amount": 5_000_000, "period": "day"}
        monthly = await ctl.create_org(spend_limit={"amount": 0})
        assert monthly["spend_limit"] == {"amount": 0, "period": "month"}

        cleared = await ctl.patch(f"/v1/orgs/{org['id']}", json={"spend_limit": None})
        assert cleared.status_code == 200
        assert cleared.json()["spend_limit"] is None

    control_plane(body)


def test_list_orgs_pages_with_a_cursor(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        created = [(await ctl.create_org(name=f"Org {i}"))["id"] for i in range(5)]

        seen: list[str] = []
        pages = 0
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            response = await ctl.get("/v1/orgs", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert set(page) >= {"items", "next_cursor"}
            assert 0 < len(page["items"]) <= 2
            seen += [item["id"] for item in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert pages < 10, "the cursor never ends"
        assert pages == 3
        assert sorted(seen) == sorted(created)
        assert len(seen) == len(set(seen)) == 5

        everything = (await ctl.get("/v1/orgs")).json()
        assert [o["id"] for o in everything["items"]] == seen
        assert everything["next_cursor"] is None

        for bad_limit in ["0", "-1", "abc", "1001", "2.5"]:
            assert_error(await ctl.get("/v1/orgs", params={"limit": bad_limit}), 400)
        assert_error(await ctl.get("/v1/orgs", params={"cursor": "!!!not a cursor"}), 400)

    control_plane(body)


def test_unknown_org_is_404(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        for response in [
            await ctl.get("/v1/orgs/org_doesnotexist"),
            await ctl.patch("/v1/orgs/org_doesnotexist", json={"name": "X"}),
            await ctl.delete("/v1/orgs/org_doesnotexist"),
            await ctl.get("/v1/orgs/org_doesnotexist/keys"),
            await ctl.post("/v1/orgs/org_doesnotexist/keys", json={"name": "k"}),
        ]:
            assert_error(response, 404, "NotFound")

    control_plane(body)


def test_patch_org_corrects_name_and_email(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        response = await ctl.patch(
            f"/v1/orgs/{org['id']}", json={"name": "Acme Ltd", "email": "billing@acme.example"}
        )
        assert response.status_code == 200, response.text
        patched = response.json()
        assert patched["name"] == "Acme Ltd"
        assert patched["email"] == "billing@acme.example"
        assert patched["id"] == org["id"]
        assert patched["created_at"] == org["created_at"]
        assert ts(patched["updated_at"]) >= ts(org["updated_at"])
        assert (await ctl.get(f"/v1/orgs/{org['id']}")).json() == patched

        for bad in [{"email": "nope"}, {"name": ""}, {"nmae": "typo"}, {"id": "org_other"}]:
            assert_error(await ctl.patch(f"/v1/orgs/{org['id']}", json=bad), 400)
        assert (await ctl.get(f"/v1/orgs/{org['id']}")).json() == patched

        # An empty PATCH changes nothing.
        same = await ctl.patch(f"/v1/orgs/{org['id']}", json={})
        assert same.status_code == 200
        assert same.json() == patched

    control_plane(body)


def test_patch_org_status_suspends_and_reactivates(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        path = f"/v1/orgs/{org['id']}"
        suspended = await ctl.patch(path, json={"status": "suspended"})
        assert suspended.status_code == 200, suspended.text
        assert suspended.json()["status"] == "suspended"
        assert snapshot_org(ctl, org["id"])["status"] == "suspended"

        active = await ctl.patch(path, json={"status": "active"})
        assert active.status_code == 200
        assert active.json()["status"] == "active"
        assert snapshot_org(ctl, org["id"])["status"] == "active"

        for bad in ["closed", "deleted", "", None, 1]:
            assert_error(await ctl.patch(path, json={"status": bad}), 400)
        assert (await ctl.get(path)).json()["status"] == "active"

    control_plane(body)


def test_delete_org_closes_it_and_revokes_its_keys(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        other = await ctl.create_org(name="Other")
        first = await ctl.create_key(org["id"])
        second = await ctl.create_key(org["id"], name="suspended one")
        bystander = await ctl.create_key(other["id"])
        response = await ctl.patch(f"/v1/keys/{second['id']}", json={"status": "suspended"})
        assert response.status_code == 200

        before = time.time()
        closed = await ctl.delete(f"/v1/orgs/{org['id']}")
        assert closed.status_code == 200, closed.text
        info = closed.json()
        # No tasks in flight, nothing to cancel upstream.
        assert info.pop("tasks") == {"cancelled": [], "left_running": []}
        assert info["status"] == "closed"
        assert info["closed_at"] is not None
        assert before - 1 <= ts(info["closed_at"]) <= time.time() + 1
        assert (await ctl.get(f"/v1/orgs/{org['id']}")).json() == info

        listed = (await ctl.get(f"/v1/orgs/{org['id']}/keys")).json()["items"]
        assert {k["id"] for k in listed} == {first["id"], second["id"]}
        for key in listed:
            assert key["status"] == "revoked"
            assert key["revoked_at"] is not None
        snap = Snapshot.from_wire(ctl.snapshot)
        assert snap.orgs[org["id"]].status == "closed"
        assert snap.keys[first["id"]].status == "revoked"
        assert snap.keys[second["id"]].status == "revoked"
        assert snap.keys[bystander["id"]].status == "active"
        assert (await ctl.get(f"/v1/orgs/{other['id']}")).json()["status"] == "active"

        # A closed org stays closed.
        for status in ["active", "suspended"]:
            response = await ctl.patch(f"/v1/orgs/{org['id']}", json={"status": status})
            assert_error(response, 409, "Conflict")
        assert_error(await ctl.post(f"/v1/orgs/{org['id']}/keys", json={"name": "new"}), 409)
        for key in (first, second):
            assert_error(await ctl.post(f"/v1/keys/{key['id']}/rotate", json={}), 409)
            response = await ctl.patch(f"/v1/keys/{key['id']}", json={"status": "active"})
            assert_error(response, 409)

        # Closing again is harmless and keeps the original closure time.
        again = await ctl.delete(f"/v1/orgs/{org['id']}")
        assert again.status_code == 200
        assert again.json()["status"] == "closed"
        assert again.json()["closed_at"] == info["closed_at"]

    control_plane(body)


def test_patch_closed_org_without_status_is_a_conflict(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        assert (await ctl.delete(f"/v1/orgs/{org['id']}")).status_code == 200
        response = await ctl.patch(f"/v1/orgs/{org['id']}", json={"name": "Renamed"})
        assert_error(response, 409, "Conflict")

    control_plane(body)


# ====================================================================================== keys


def test_create_key_returns_the_secret_once(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        response = await ctl.post(f"/v1/orgs/{org['id']}/keys", json={"name": "ci"})
        assert response.status_code == 201, response.text
        created = response.json()
        secret = created["key"]
        match = KEY_RE.match(secret)
        assert match, secret
        assert match.group(1) == "live"
        assert match.group(2) == created["id"]
        assert secret.startswith(f"nk_live_{created['id']}_")
        parsed = proxy_keys.parse_key(secret)
        assert parsed is not None
        assert parsed.key_id == created["id"]
        assert parsed.environment == "live"
        assert created["org_id"] == org["id"]
        assert created["name"] == "ci"
        assert created["status"] == "active"
        assert created["environment"] == "live"
        assert created["expires_at"] is None
        assert created["models"] is None
        assert created["allowed_ips"] == []
        no_hash_anywhere(response.text)

        # Never again: not on read, not in the list.
        fetched = await ctl.get(f"/v1/keys/{created['id']}")
        assert fetched.status_code == 200
        listed = await ctl.get(f"/v1/orgs/{org['id']}/keys")
        assert listed.status_code == 200
        assert [k["id"] for k in listed.json()["items"]] == [created["id"]]
        for text, item in [
            (fetched.text, fetched.json()),
            (listed.text, listed.json()["items"][0]),
        ]:
            assert "key" not in item
            assert secret not in text
            assert parsed.secret not in text
            no_hash_anywhere(text)
        assert fetched.json() == {k: v for k, v in created.items() if k != "key"}

        # Stored as an Argon2id hash; the secret is nowhere on disk.
        (row,) = await ctl.rows("SELECT * FROM api_keys WHERE id=?", created["id"])
        assert row["secret_hash"].startswith("$argon2id$")
        assert proxy_keys.verify_secret(row["secret_hash"], secret)
        on_disk = await ctl.stored_bytes()
        assert secret.encode() not in on_disk
        assert parsed.secret.encode() not in on_disk

    control_plane(body)


def test_test_environment_keys(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        created = await ctl.create_key(org["id"], environment="test")
        assert created["key"].startswith(f"nk_test_{created['id']}_")
        assert KEY_RE.match(created["key"])
        parsed = proxy_keys.parse_key(created["key"])
        assert parsed is not None and parsed.environment == "test"
        assert created["environment"] == "test"
        for bad in ["prod", "", None, "LIVE"]:
            response = await ctl.post(
                f"/v1/orgs/{org['id']}/keys", json={"name": "x", "environment": bad}
            )
            assert_error(response, 400)

    control_plane(body)


def test_key_fields_round_trip(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        created = await ctl.create_key(
            org["id"],
            models=["seedance-1-0-pro", "seedance-1-0-lite", "seedance-1-0-pro"],
            allowed_ips=["203.0.113.9", "2001:db8::/64"],
            expires_at="2031-02-03T04:05:06+02:00",
            rate_limit={"requests_per_minute": 30},
            spend_limit={"amount": 1_000_000, "period": "month"},
        )
        expected_expiry = datetime.fromisoformat("2031-02-03T02:05:06+00:00").timestamp()
        assert sorted(created["models"]) == ["seedance-1-0-lite", "seedance-1-0-pro"]
        assert created["allowed_ips"] == ["203.0.113.9/32", "2001:db8::/64"]
        assert ts(created["expires_at"]) == expected_expiry
        assert created["rate_limit"] == {"requests_per_minute": 30}
        assert created["spend_limit"] == {"amount": 1_000_000, "period": "month"}

        fetched = (await ctl.get(f"/v1/keys/{created['id']}")).json()
        for field in ["models", "allowed_ips", "expires_at", "rate_limit", "spend_limit"]:
            assert fetched[field] == created[field], field

        wire = snapshot_key(ctl, created["id"])
        assert wire["expires_at"] == expected_expiry
        policy = Snapshot.from_wire(ctl.snapshot).keys[created["id"]]
        assert policy.models == frozenset({"seedance-1-0-lite", "seedance-1-0-pro"})
        assert policy.allowed_networks == (
            ipaddress.ip_network("203.0.113.9/32"),
            ipaddress.ip_network("2001:db8::/64"),
        )
        assert policy.expires_at == expected_expiry

        # PATCH changes them; null clears the expiry and the model list.
        response = await ctl.patch(
            f"/v1/keys/{created['id']}",
            json={"expires_at": None, "models": None, "allowed_ips": [], "name": "renamed"},
        )
        assert response.status_code == 200, response.text
        patched = response.json()
        assert patched["expires_at"] is None
        assert patched["models"] is None
        assert patched["allowed_ips"] == []
        assert patched["name"] == "renamed"
        assert "key" not in patched
        policy = Snapshot.from_wire(ctl.snapshot).keys[created["id"]]
        assert policy.models is None and policy.expires_at is None
        assert policy.allowed_networks == ()

    control_plane(body)


def test_bad_key_input_is_refused(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        path = f"/v1/orgs/{org['id']}/keys"
        for bad_expiry in [
            "tomorrow",
            "2031-02-03T04:05:06",  # no zone
            "2031-13-01T00:00:00Z",
            "2031-02-30T00:00:00Z",
            "",
            1_900_000_000,
            ["2031-02-03T04:05:06Z"],
        ]:
            response = await ctl.post(path, json={"name": "k", "expires_at": bad_expiry})
            assert_error(response, 400, "InvalidParameter")
        for bad in [
            {},
            {"name": ""},
            {"name": "k", "secret": "mine"},
            {"name": "k", "id": "AAAAAAAAAAAAAAAA"},
            {"name": "k", "models": "seedance"},
            {"name": "k", "models": [1]},
            {"name": "k", "models": [""]},
            {"name": "k", "allowed_ips": ["10.0.0.300"]},
            {"name": "k", "rate_limit": {"requests_per_minute": 0}},
            {"name": "k", "spend_limit": {"amount": -1}},
        ]:
            assert_error(await ctl.post(path, json=bad), 400)
        assert (await ctl.get(path)).json()["items"] == []

        created = await ctl.create_key(org["id"])
        key_path = f"/v1/keys/{created['id']}"
        assert_error(await ctl.patch(key_path, json={"expires_at": "soon"}), 400)
        assert_error(await ctl.patch(key_path, json={"org_id": "org_other"}), 400)
        assert (await ctl.get(key_path)).json()["expires_at"] is None

        for response in [
            await ctl.get("/v1/keys/AAAAAAAAAAAAAAAA"),
            await ctl.patch("/v1/keys/AAAAAAAAAAAAAAAA", json={"name": "x"}),
            await ctl.delete("/v1/keys/AAAAAAAAAAAAAAAA"),
            await ctl.post("/v1/keys/AAAAAAAAAAAAAAAA/rotate", json={}),
        ]:
            assert_error(response, 404, "NotFound")

    control_plane(body)


@pytest.mark.parametrize("expiry", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_expiry_outside_representable_range_is_a_400(
    control_plane: ControlRunner, expiry: str
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        response = await ctl.post(
            f"/v1/orgs/{org['id']}/keys", json={"name": "k", "expires_at": expiry}
        )
        assert_error(response, 400)
        listed = await ctl.get(f"/v1/orgs/{org['id']}/keys")
        assert listed.status_code == 200, listed.text
        assert listed.json()["items"] == []

    control_plane(body)


def test_revoke_key_is_idempotent_and_final(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        path = f"/v1/keys/{key['id']}"

        before = time.time()
        response = await ctl.delete(path)
        assert response.status_code == 200, response.text
        revoked = response.json()
        assert revoked["status"] == "revoked"
        assert before - 1 <= ts(revoked["revoked_at"]) <= time.time() + 1
        assert "key" not in revoked
        assert (await ctl.get(path)).json()["status"] == "revoked"
        assert Snapshot.from_wire(ctl.snapshot).keys[key["id"]].status == "revoked"

        again = await ctl.delete(path)
        assert again.status_code == 200
        assert again.json()["status"] == "revoked"
        assert again.json()["revoked_at"] == revoked["revoked_at"]

        for status in ["active", "suspended"]:
            assert_error(await ctl.patch(path, json={"status": status}), 409, "Conflict")
        assert (await ctl.get(path)).json()["status"] == "revoked"
        assert Snapshot.from_wire(ctl.snapshot).keys[key["id"]].status == "revoked"

    control_plane(body)


def test_patch_revoked_key_without_status_is_a_conflict(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        assert (await ctl.delete(f"/v1/keys/{key['id']}")).status_code == 200
        response = await ctl.patch(f"/v1/keys/{key['id']}", json={"models": ["m"]})
        assert_error(response, 409, "Conflict")

    control_plane(body)


def test_patch_key_status_suspends_and_reactivates(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        path = f"/v1/keys/{key['id']}"
        response = await ctl.patch(path, json={"status": "suspended"})
        assert response.status_code == 200
        assert response.json()["status"] == "suspended"
        assert Snapshot.from_wire(ctl.snapshot).keys[key["id"]].status == "suspended"
        response = await ctl.patch(path, json={"status": "active"})
        assert response.json()["status"] == "active"
        assert Snapshot.from_wire(ctl.snapshot).keys[key["id"]].status == "active"
        for bad in ["revoked", "expired", None]:
            assert_error(await ctl.patch(path, json={"status": bad}), 400)
        assert (await ctl.get(path)).json()["status"] == "active"

    control_plane(body)


def test_rotate_without_grace_replaces_the_secret(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        old = await ctl.create_key(org["id"])
        response = await ctl.post(f"/v1/keys/{old['id']}/rotate", json={})
        assert response.status_code == 200, response.text
        new = response.json()
        assert new["id"] == old["id"]
        assert new["key"] != old["key"]
        match = KEY_RE.match(new["key"])
        assert match and match.group(2) == old["id"]
        parsed = proxy_keys.parse_key(new["key"])
        assert parsed is not None and parsed.key_id == old["id"]
        assert new["status"] == "active"
        assert new["rotated_at"] is not None
        assert new["previous_secret_valid_until"] is None
        no_hash_anywhere(response.text)

        wire = snapshot_key(ctl, old["id"])
        assert wire["previous_secret_hash"] is None
        assert wire["previous_valid_until"] is None
        assert proxy_keys.verify_secret(wire["secret_hash"], new["key"])
        assert not proxy_keys.verify_secret(wire["secret_hash"], old["key"])
        assert new["key"].encode() not in await ctl.stored_bytes()
        assert "key" not in (await ctl.get(f"/v1/keys/{old['id']}")).json()

    control_plane(body)


def test_rotate_with_grace_keeps_the_old_secret_for_a_while(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        old = await ctl.create_key(org["id"])
        old_hash = snapshot_key(ctl, old["id"])["secret_hash"]

        before = time.time()
        response = await ctl.post(f"/v1/keys/{old['id']}/rotate", json={"grace_seconds": 600})
        after = time.time()
        assert response.status_code == 200, response.text
        new = response.json()
        assert new["id"] == old["id"] and new["key"] != old["key"]
        assert before + 600 - 1 <= ts(new["previous_secret_valid_until"]) <= after + 600 + 1

        wire = snapshot_key(ctl, old["id"])
        assert wire["previous_secret_hash"] == old_hash
        assert proxy_keys.verify_secret(wire["previous_secret_hash"], old["key"])
        assert proxy_keys.verify_secret(wire["secret_hash"], new["key"])
        assert before + 600 <= wire["previous_valid_until"] <= after + 600

        policy = Snapshot.from_wire(ctl.snapshot).keys[old["id"]]
        assert policy.valid_hashes(after) == (wire["secret_hash"], old_hash)
        assert policy.valid_hashes(after + 601) == (wire["secret_hash"],)

        # Revoking ends the grace at once: the old secret must not outlive the key.
        assert (await ctl.delete(f"/v1/keys/{old['id']}")).status_code == 200
        wire = snapshot_key(ctl, old["id"])
        assert wire["status"] == "revoked"
        assert wire["previous_secret_hash"] is None
        assert wire["previous_valid_until"] is None

    control_plane(body)


def test_rotate_refusals(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        path = f"/v1/keys/{key['id']}/rotate"
        version = ctl.version
        for bad in [-1, MAX_GRACE_SECONDS + 1, 10**12, "60", 1.5, True, None]:
            response = await ctl.post(path, json={"grace_seconds": bad})
            assert_error(response, 400, "InvalidParameter")
        assert_error(await ctl.post(path, json={"grace": 60}), 400)
        assert ctl.version == version  # nothing was rotated
        assert snapshot_key(ctl, key["id"])["previous_secret_hash"] is None

        longest = await ctl.post(path, json={"grace_seconds": MAX_GRACE_SECONDS})
        assert longest.status_code == 200, longest.text

        assert (await ctl.delete(f"/v1/keys/{key['id']}")).status_code == 200
        assert_error(await ctl.post(path, json={}), 409, "Conflict")
        assert_error(await ctl.post(path, json={"grace_seconds": 60}), 409, "Conflict")

    control_plane(body)


# =========================================================================== policy snapshot


def test_every_mutation_bumps_the_version_and_reaches_listeners(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        received: list[dict[str, Any]] = []
        ctl.st.subscribe(received.append)
        assert [s["version"] for s in received] == [ctl.version]  # the current one at once

        org = await ctl.create_org()
        key_ids: list[str] = []

        async def create_key() -> None:
            key_ids.append((await ctl.create_key(org["id"]))["id"])

        async def expect_ok(coro: Any) -> None:
            response = await coro
            assert response.status_code in (200, 201), response.text

        steps = [
            lambda: expect_ok(ctl.patch(f"/v1/orgs/{org['id']}", json={"name": "Renamed"})),
            lambda: expect_ok(
                ctl.patch(f"/v1/orgs/{org['id']}", json={"allowed_ips": ["10.0.0.0/8"]})
            ),
            lambda: expect_ok(ctl.patch(f"/v1/orgs/{org['id']}", json={"status": "suspended"})),
            create_key,
            lambda: expect_ok(ctl.patch(f"/v1/keys/{key_ids[0]}", json={"models": ["m1"]})),
            lambda: expect_ok(ctl.post(f"/v1/keys/{key_ids[0]}/rotate", json={})),
            lambda: expect_ok(ctl.delete(f"/v1/keys/{key_ids[0]}")),
            lambda: expect_ok(ctl.post("/v1/orgs", json={"name": "B", "email": "b@b.example"})),
            lambda: expect_ok(ctl.delete(f"/v1/orgs/{org['id']}")),
        ]
        versions = [ctl.version]
        for step in steps:
            await step()
            assert ctl.version > versions[-1], step
            assert received[-1] is ctl.snapshot
            versions.append(ctl.version)

        seen = [s["version"] for s in received]
        assert seen == sorted(set(seen)), "listeners saw versions out of order or twice"
        assert set(versions) <= set(seen), "a published snapshot never reached the listener"
        assert seen[-1] == ctl.version

        # Reads don't publish.
        version = ctl.version
        await ctl.get("/v1/orgs")
        await ctl.get(f"/v1/keys/{key_ids[0]}")
        assert ctl.version == version

    control_plane(body)


def test_snapshot_reflects_the_database(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org(
            allowed_ips=["10.0.0.0/8", "2001:db8::/32"],
            rate_limit={"requests_per_minute": 60},
            spend_limit={"amount": 7, "period": "day"},
        )
        key = await ctl.create_key(org["id"], models=["m1", "m2"], allowed_ips=["192.0.2.1"])

        snap = Snapshot.from_wire(ctl.snapshot)
        assert snap.version == ctl.version
        org_policy = snap.orgs[org["id"]]
        assert org_policy.status == "active"
        assert org_policy.allowed_networks == (
            ipaddress.ip_network("10.0.0.0/8"),
            ipaddress.ip_network("2001:db8::/32"),
        )
        assert org_policy.rate_limit == {"requests_per_minute": 60}
        assert org_policy.spend_limit == {"amount": 7, "period": "day"}
        key_policy = snap.keys[key["id"]]
        assert key_policy.org_id == org["id"]
        assert key_policy.status == "active"
        assert key_policy.models == frozenset({"m1", "m2"})
        assert key_policy.allowed_networks == (ipaddress.ip_network("192.0.2.1/32"),)
        assert proxy_keys.verify_secret(key_policy.secret_hash, key["key"])

        await ctl.patch(f"/v1/orgs/{org['id']}", json={"allowed_ips": [], "status": "suspended"})
        await ctl.delete(f"/v1/keys/{key['id']}")
        snap = Snapshot.from_wire(ctl.snapshot)
        assert snap.orgs[org["id"]].allowed_networks == ()
        assert snap.orgs[org["id"]].status == "suspended"
        assert snap.keys[key["id"]].status == "revoked"

    control_plane(body)


def test_version_survives_a_restart(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        await ctl.delete(f"/v1/keys/{key['id']}")
        before = ctl.version
        epoch = ctl.snapshot["epoch"]

        await ctl.restart()
        assert ctl.version > before
        assert ctl.snapshot["epoch"] == epoch  # the same database: the same epoch
        snap = Snapshot.from_wire(ctl.snapshot)
        assert snap.orgs[org["id"]].status == "active"
        assert snap.keys[key["id"]].status == "revoked"
        # Same env token: still accepted, and not stored a second time.
        assert (await ctl.get(f"/v1/orgs/{org['id']}")).status_code == 200
        assert len(await ctl.rows("SELECT id FROM admin_tokens")) == 1

        after_restart = ctl.version
        await ctl.create_org(name="Later")
        assert ctl.version > after_restart

    control_plane(body)


# ===================================================================================== audit


def test_every_mutation_is_audited_newest_first(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        (env_token,) = await ctl.rows("SELECT id FROM admin_tokens")
        org = await ctl.create_org()
        await ctl.patch(f"/v1/orgs/{org['id']}", json={"email": "new@acme.example"})
        key = await ctl.create_key(org["id"])
        await ctl.patch(f"/v1/keys/{key['id']}", json={"name": "renamed"})
        rotated = (await ctl.post(f"/v1/keys/{key['id']}/rotate", json={"grace_seconds": 5})).json()
        await ctl.delete(f"/v1/keys/{key['id']}")
        extra = await ctl.create_admin_token(["read"])
        await ctl.delete(f"/v1/admin/tokens/{extra['id']}")
        await ctl.delete(f"/v1/orgs/{org['id']}")

        response = await ctl.get("/v1/audit")
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        ours = [i for i in items if i["target"] in {org["id"], key["id"], extra["id"]}]
        assert [(i["action"], i["target"]) for i in ours] == [
            ("org.close", org["id"]),
            ("admin_token.revoke", extra["id"]),
            ("admin_token.create", extra["id"]),
            ("key.revoke", key["id"]),
            ("key.rotate", key["id"]),
            ("key.update", key["id"]),
            ("key.create", key["id"]),
            ("org.update", org["id"]),
            ("org.create", org["id"]),
        ]
        ids = [i["id"] for i in items]
        assert ids == sorted(ids, reverse=True)
        times = [ts(i["ts"]) for i in items]
        assert times == sorted(times, reverse=True)
        for item in ours:
            assert item["actor"] == env_token["id"]
            assert isinstance(item["detail"], dict)

        # No secret in any entry: neither keys nor admin tokens nor their hashes.
        text = response.text
        for secret in [key["key"], rotated["key"], ADMIN_TOKEN, extra["token"]]:
            assert secret not in text
            parsed = proxy_keys.parse_key(secret)
            if parsed is not None:
                assert parsed.secret not in text
        no_hash_anywhere(text)

        # Paging returns the same entries, each once.
        paged: list[int] = []
        cursor = None
        for _ in range(20):
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await ctl.get("/v1/audit", params=params)).json()
            paged += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == ids

    control_plane(body)


def test_refused_calls_are_not_audited(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        count = len((await ctl.get("/v1/audit")).json()["items"])
        reader = await ctl.create_admin_token(["read"])
        count += 1
        await ctl.patch(f"/v1/orgs/{org['id']}", json={"email": "bad"})
        await ctl.patch(f"/v1/orgs/{org['id']}", token=reader["token"], json={"name": "X"})
        await ctl.post("/v1/orgs", token=None, json={"name": "X", "email": "x@x.example"})
        await ctl.post(f"/v1/orgs/{org['id']}/keys", json={"name": "k", "expires_at": "no"})
        assert len((await ctl.get("/v1/audit")).json()["items"]) == count

    control_plane(body)
