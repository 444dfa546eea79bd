"""Admin tokens: the list shows who holds access (never a secret), and the `read` scope sees
every admin read and changes nothing, checked for every operation in the route table."""

from __future__ import annotations

import json
import re
from typing import Any

import control.app
from control.api.openapi import OPERATIONS
from tests.unit.conftest import ADMIN_TOKEN, Control, ControlRunner, assert_error

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def test_tokens_are_listed_with_name_scopes_created_and_last_use_never_the_secret(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        reader = await ctl.create_admin_token(["read"])
        edge = await ctl.create_admin_token(["edge"])
        listed = await ctl.get("/v1/admin/tokens")
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert [t["id"] for t in items][1:] == [reader["id"], edge["id"]]
        env, read_row, edge_row = items
        assert env["source"] == "env" and env["scopes"] == ["admin"]
        assert read_row["scopes"] == ["read"] and edge_row["scopes"] == ["edge"]
        assert read_row["name"] == "t" and read_row["created_at"] == reader["created_at"]
        assert RFC3339_UTC.match(env["last_used_at"])  # the admin token just listed them
        assert read_row["last_used_at"] is None  # never presented yet
        assert read_row["revoked_at"] is None
        text = listed.text
        for secret in (ADMIN_TOKEN, reader["token"], edge["token"]):
            assert secret not in text
        assert "$argon2" not in text and "token_hash" not in text and '"token"' not in text

        # Presenting the read token marks it used; revoking shows in the list.
        assert (await ctl.get("/v1/orgs", token=reader["token"])).status_code == 200
        revoked = await ctl.delete(f"/v1/admin/tokens/{edge['id']}")
        assert revoked.status_code == 200
        after = {t["id"]: t for t in (await ctl.get("/v1/admin/tokens")).json()["items"]}
        assert RFC3339_UTC.match(after[reader["id"]]["last_used_at"])
        assert RFC3339_UTC.match(after[edge["id"]]["revoked_at"])

        # The last use survives a restart (written on close).
        await ctl.restart()
        again = {t["id"]: t for t in (await ctl.get("/v1/admin/tokens")).json()["items"]}
        assert again[reader["id"]]["last_used_at"] == after[reader["id"]]["last_used_at"]

    control_plane(body)


def test_tokens_list_pages(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        made = [(await ctl.create_admin_token(["read"]))["id"] for _ in range(3)]
        first = (await ctl.get("/v1/admin/tokens?limit=2")).json()
        second = (await ctl.get(f"/v1/admin/tokens?limit=2&cursor={first['next_cursor']}")).json()
        ids = [t["id"] for t in first["items"] + second["items"]]
        assert ids[1:] == made and second["next_cursor"] is None

    control_plane(body)


async def _world(ctl: Control) -> dict[str, str]:
    """One of everything a path can name, so every operation reaches its real work."""
    org = await ctl.create_org()
    key = await ctl.create_key(org["id"])
    hook = await ctl.post(f"/v1/orgs/{org['id']}/webhooks", json={"url": "https://h.example/x"})
    assert hook.status_code == 201, hook.text
    pack = {"credits": 10_000_000, "amount": 1000, "currency": "usd"}
    assert (await ctl.put("/v1/credit-packs/starter", json=pack)).status_code == 201
    token = await ctl.create_admin_token(["read"])
    return {
        "org": org["id"],
        "key": key["id"],
        "webhook": hook.json()["id"],
        "event": "evt_missing",
        "token": token["id"],
        "op": "owner",
        "family": "seedance-1-0-pro",
        "pack": "starter",
        "payment": "cs_missing",
    }


async def _dump(ctl: Control) -> str:
    """Every row of every table, except when a token was last used (a read records that)."""
    dump = {}
    for table in await ctl.table_names():
        # in a fixed order, whatever the table's key (the rollups' tables on PostgreSQL have
        # no rowid, as on SQLite, where they are in a file of their own)
        rows = await ctl.rows(f"SELECT * FROM {table}")
        for row in rows:
            row.pop("last_used_at", None)
        dump[table] = sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))
    return json.dumps(dump, sort_keys=True, default=str)


def _operations() -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for route in control.app.ROUTES
        for method in route.methods or ()
        if method != "HEAD"
    )


def test_read_scope_sees_everything_and_changes_nothing_for_every_operation(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        world = await _world(ctl)
        reader = (await ctl.create_admin_token(["read"]))["token"]
        operations = _operations()
        assert len(operations) >= 30  # the walk covers the whole table, not a sample
        before = await _dump(ctl)
        seen: list[str] = []
        for method, template in operations:
            path = template.format(**world)
            kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PATCH", "PUT") else {}
            response = await ctl.request(method, path, token=reader, **kwargs)
            seen.append(f"{method} {template} {response.status_code}")
            if OPERATIONS[(method, template)].public:
                assert response.status_code == 200, (method, path, response.text)
            elif template.startswith("/v1/edge/"):
                # Edges' calls hand out key hashes and take usage: not for a reader.
                assert_error(response, 403, "Forbidden")
            elif method == "GET":
                assert response.status_code == 200, (method, path, response.text)
            else:
                assert_error(response, 403, "Forbidden")
            assert await _dump(ctl) == before, f"{method} {path} changed the database"
        assert len(seen) == len(operations)

        # The same walk with the admin token is not refused anywhere: the reader's 403s come
        # from its scope, not from the requests.
        for method, template in operations:
            if method == "GET" and not template.startswith("/v1/edge/"):
                response = await ctl.get(template.format(**world))
                assert response.status_code == 200, (template, response.text)

    control_plane(body)
