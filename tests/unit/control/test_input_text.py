"""Text an admin sends (names, emails, reasons, URLs, model ids) refuses control characters,
NUL included, with the control plane's usual 400 envelope naming the field."""

from __future__ import annotations

from typing import Any

from tests.unit.conftest import Control, ControlRunner, assert_error

CONTROL_CHARACTERS = ["\u0000", "\u0007", "\n", "\t", "\u001f", "\u007f", "\u0085", "\u009f"]


async def _refused(ctl: Control, method: str, path: str, body: dict[str, Any], field: str) -> None:
    response = await ctl.request(method, path, json=body)
    assert_error(response, 400, "InvalidParameter")
    message = response.json()["error"]["message"]
    assert message == f"`{field}` must not contain control characters.", message


def test_every_text_field_refuses_control_characters(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        org_path, key_path = f"/v1/orgs/{org['id']}", f"/v1/keys/{key['id']}"
        base_org = {"name": "Acme", "email": "ops@acme.example"}
        for char in CONTROL_CHARACTERS:
            bad = f"a{char}b"
            cases: list[tuple[str, str, dict[str, Any], str]] = [
                ("POST", "/v1/orgs", base_org | {"name": bad}, "name"),
                ("POST", "/v1/orgs", {"name": char, "email": "a@b.example"}, "name"),
                ("POST", "/v1/orgs", base_org | {"email": f"o{char}@acme.example"}, "email"),
                ("POST", "/v1/orgs", base_org | {"contact_name": bad}, "contact_name"),
                ("PATCH", org_path, {"name": bad}, "name"),
                ("PATCH", org_path, {"contact_name": bad}, "contact_name"),
                ("POST", f"{org_path}/keys", {"name": bad}, "name"),
                ("POST", f"{org_path}/keys", {"name": "k", "models": [bad]}, "models"),
                ("PATCH", key_path, {"name": bad}, "name"),
                ("PATCH", key_path, {"models": ["seedance-1-0-pro", bad]}, "models"),
                ("POST", "/v1/admin/tokens", {"name": bad, "scopes": ["read"]}, "name"),
                ("POST", f"{org_path}/credits", {"amount": 5, "reason": bad}, "reason"),
                ("POST", f"{org_path}/credits", {"task_id": bad}, "task_id"),
                ("POST", f"{org_path}/webhooks", {"url": f"https://h.example/{bad}"}, "url"),
            ]
            for method, path, payload, field in cases:
                await _refused(ctl, method, path, payload, field)
        # Nothing of it was stored: the one org, its one key, the one admin token.
        assert len(await ctl.rows("SELECT id FROM orgs")) == 1
        assert len(await ctl.rows("SELECT id FROM api_keys")) == 1
        assert len(await ctl.rows("SELECT id FROM admin_tokens")) == 1
        names = await ctl.rows("SELECT name FROM orgs UNION ALL SELECT name FROM api_keys")
        assert [row["name"] for row in names] == ["Acme", "ci"]

    control_plane(body)


def test_printable_unicode_is_still_accepted(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        name = "Société Générale — 東京 🎬 ‏עברית"
        org = await ctl.create_org(name=name, contact_name="Zoë O'Brien")
        assert org["name"] == name and org["contact_name"] == "Zoë O'Brien"
        key = await ctl.create_key(org["id"], name="prod ✓")
        assert key["name"] == "prod ✓"

    control_plane(body)
