"""The org's data export (`GET /v1/orgs/{org}/export`): a streamed ZIP of NDJSON files with a
manifest, every kind of data the org has and nothing of another org's, and never a secret."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import time
import zipfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.routing import Route

import control.api.export
import control.app
from control.http import rfc3339
from control.store import requestlog
from proxy.core.callback_tokens import INGRESS_PREFIX
from proxy.core.keys import parse_key
from tests.unit.conftest import ADMIN_TOKEN, Control, ControlRunner, assert_error

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z
EXPORT_PATH = "/v1/orgs/{org}/export"
NDJSON = (
    "keys.ndjson",
    "usage.ndjson",
    "ledger.ndjson",
    "reservations.ndjson",
    "tasks.ndjson",
    "payments.ndjson",
    "invoices.ndjson",
    "disputes.ndjson",
    "webhooks.ndjson",
    "webhook_deliveries.ndjson",
    "audit.ndjson",
    "security_events.ndjson",
)
FILES = {"org.json", "manifest.json", *NDJSON}


@pytest.fixture(autouse=True)
def export_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """The route, should control/app.py not list it (yet): create_app reads ROUTES when called."""
    if not any(route.path == EXPORT_PATH for route in control.app.ROUTES):
        route = Route(EXPORT_PATH, control.api.export.export_org, methods=["GET"])
        monkeypatch.setattr(control.app, "ROUTES", [*control.app.ROUTES, route])


# --- building an org with data in every table -----------------------------------------------


async def insert(ctl: Control, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    db = ctl.st.log if table in requestlog.TABLES else ctl.st.db  # the table's file
    async with db.transaction() as tx:
        await tx.executemany(sql, [tuple(row[c] for c in columns) for row in rows])


def usage_row(org_id: str, key_id: str, n: int, tag: str) -> dict[str, Any]:
    return {
        "request_id": f"req_{tag}_{n:06d}_{secrets.token_hex(4)}",
        "ts": T0 + n,
        "org_id": org_id,
        "key_id": key_id,
        "method": "POST",
        "route": "/api/v3/contents/generations/tasks",
        "status": 200 if n % 7 else 429,
        "latency_ms": 12.5 + n % 10,
        "upstream_latency_ms": 10.0,
        "bytes_in": 100 + n,
        "bytes_out": 200,
        "credits": n % 3,
        "model": "seedance-1-0-pro",
        "task_id": f"cgt-{tag}-{n}",
        "limited_by": None,
    }


async def populate(ctl: Control, tag: str, usage: int = 3) -> dict[str, Any]:
    """An org with keys (one rotated, one revoked), a rotated webhook, credits, and rows in
    usage, ledger, reservations, tasks, webhook_events and webhook_attempts."""
    org = await ctl.create_org(name=f"Org {tag} — Ünïcode", email=f"{tag}@example.test")
    org_id = org["id"]
    first = await ctl.create_key(org_id, name=f"{tag}-first")
    second = await ctl.create_key(org_id, name=f"{tag}-second")
    rotated = await ctl.post(f"/v1/keys/{first['id']}/rotate", json={"grace_seconds": 3600})
    assert rotated.status_code == 200, rotated.text
    assert (await ctl.delete(f"/v1/keys/{second['id']}")).status_code == 200
    hook = await ctl.post(
        f"/v1/orgs/{org_id}/webhooks", json={"url": f"https://{tag}.example.test/hook"}
    )
    assert hook.status_code == 201, hook.text
    hook_id = hook.json()["id"]
    rotated_hook = await ctl.post(
        f"/v1/orgs/{org_id}/webhooks/{hook_id}/rotate", json={"grace_seconds": 3600}
    )
    assert rotated_hook.status_code == 200, rotated_hook.text
    grant = await ctl.post(f"/v1/orgs/{org_id}/credits", json={"amount": 5_000_000})
    assert grant.status_code == 201, grant.text
    key_id = first["id"]

    usage_rows = [usage_row(org_id, key_id, n, tag) for n in range(usage)]
    await insert(ctl, "usage", usage_rows)
    tasks = [
        {
            "id": f"cgt-{tag}-{n}",
            "org_id": org_id,
            "key_id": key_id,
            "model": "seedance-1-0-pro",
            "service_tier": "default",
            "status": status,
            "reserved": 900_000,
            "charged": 750_000 if status == "succeeded" else None,
            "tokens": 30_000 if status == "succeeded" else None,
            "created_at": T0 + n,
            "updated_at": T0 + n + 5,
            "finished_at": T0 + n + 5 if status == "succeeded" else None,
            "callback_webhook": hook_id,
        }
        for n, status in enumerate(("succeeded", "running"))
    ]
    await insert(ctl, "tasks", tasks)
    reservations = [
        {
            "id": f"res_{tag}_{n}",
            "org_id": org_id,
            "key_id": key_id,
            "amount": 900_000,
            "model": "seedance-1-0-pro",
            "tier": "default",
            "generate_audio": n,
            "task_id": task["id"],
            "status": "settled" if n == 0 else "held",
            "created_at": T0 + n,
            "settled_at": T0 + 5 if n == 0 else None,
            "callback_webhook": hook_id,
        }
        for n, task in enumerate(tasks)
    ]
    await insert(ctl, "reservations", reservations)
    ledger = [
        {
            "org_id": org_id,
            "key_id": key_id,
            "kind": "charge",
            "amount": -750_000,
            "task_id": tasks[0]["id"],
            "reason": None,
            "actor": "system",
            "created_at": T0 + 5,
        }
    ]
    await insert(ctl, "ledger", ledger)
    payload = {
        "id": tasks[0]["id"],
        "status": "succeeded",
        "model": "seedance-1-0-pro",
        "content": {"video_url": f"https://cdn.example.test/{tag}.mp4"},
        "callback_url": f"https://edge.example.test{INGRESS_PREFIX}{tag}-ingress-token.sig",
    }
    events = [
        {
            "id": f"msg_{tag}_{n}",
            "webhook_id": hook_id,
            "org_id": org_id,
            "task_id": tasks[0]["id"],
            "type": kind,
            "payload": json.dumps(payload | {"status": kind[5:]}).encode(),
            "status": "delivered" if n == 0 else "pending",
            "attempts": 2 if n == 0 else 0,
            "next_attempt_at": None if n == 0 else T0 + 60,
            "created_at": T0 + 10 + n,
            "updated_at": T0 + 20 + n,
        }
        for n, kind in enumerate(("task.succeeded", "task.running"))
    ]
    await insert(ctl, "webhook_events", events)
    attempts = [
        {
            "event_id": events[0]["id"],
            "webhook_id": hook_id,
            "attempted_at": T0 + 11 + n,
            "status": status,
            "latency_ms": 40.0 + n,
            "error": error,
        }
        for n, (status, error) in enumerate(((None, "timed out"), (200, None)))
    ]
    await insert(ctl, "webhook_attempts", attempts)
    # Not aimed at the org, but naming it in its detail.
    async with ctl.st.transaction() as tx:
        await ctl.st.audit(tx, "system", "note", "adm_elsewhere", {"org_id": org_id})
    return {
        "org_id": org_id,
        "keys": [first, second],
        "secrets": [first["key"], second["key"], rotated.json()["key"]],
        "webhook_id": hook_id,
        "webhook_secrets": [hook.json()["secret"], rotated_hook.json()["secret"]],
        "usage": usage_rows,
        "tasks": tasks,
        "reservations": reservations,
        "ledger": ledger,
        "events": events,
        "attempts": attempts,
        "payload": payload,
    }


# --- reading a bundle -------------------------------------------------------------------------


def read_bundle(data: bytes) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]], bytes]:
    """(org.json, the records of every NDJSON file, every byte of every member uncompressed)."""
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        assert bundle.testzip() is None
        assert set(bundle.namelist()) == FILES
        assert len(bundle.namelist()) == len(FILES)  # each once
        raw = {name: bundle.read(name) for name in bundle.namelist()}
    files: dict[str, list[dict[str, Any]]] = {}
    for name in NDJSON:
        text = raw[name].decode("utf-8")
        assert text == "" or text.endswith("\n")
        files[name] = [json.loads(line) for line in text.splitlines()]
        assert all(isinstance(record, dict) for record in files[name])
    files["manifest.json"] = [json.loads(raw["manifest.json"])]
    return json.loads(raw["org.json"]), files, b"".join(raw.values())


async def export(ctl: Control, org_id: str) -> httpx.Response:
    response = await ctl.get(f"/v1/orgs/{org_id}/export")
    assert response.status_code == 200, response.text
    return response


def secret_part(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None
    return parsed.secret


def parse_ts(value: str) -> float:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# --- tests ------------------------------------------------------------------------------------


def test_export_holds_everything_of_the_org(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        a = await populate(ctl, "alpha")
        b = await populate(ctl, "bravo")
        org_id = a["org_id"]
        response = await export(ctl, org_id)
        assert response.headers["content-type"] == "application/zip"
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        assert response.headers["content-disposition"] == (
            f'attachment; filename="nextapi-export-{org_id}-{day}.zip"'
        )
        org, files, text = read_bundle(response.content)

        # The org and the keys and webhooks as the API shows them.
        assert org == (await ctl.get(f"/v1/orgs/{org_id}")).json()
        assert "Ünïcode".encode() in text  # UTF-8 as it is, not \u escapes
        listed = (await ctl.get(f"/v1/orgs/{org_id}/keys")).json()["items"]
        assert sorted(files["keys.ndjson"], key=lambda k: k["id"]) == sorted(
            listed, key=lambda k: k["id"]
        )
        assert {k["id"] for k in files["keys.ndjson"]} == {k["id"] for k in a["keys"]}
        assert {k["status"] for k in files["keys.ndjson"]} == {"active", "revoked"}
        hook = await ctl.get(f"/v1/orgs/{org_id}/webhooks/{a['webhook_id']}")
        assert files["webhooks.ndjson"] == [hook.json()]

        # The request log, in the shape of GET /requests, oldest first.
        assert [r["id"] for r in files["usage.ndjson"]] == [u["request_id"] for u in a["usage"]]
        for record, row in zip(files["usage.ndjson"], a["usage"], strict=True):
            expected = {k: v for k, v in row.items() if k not in ("request_id", "ts")}
            assert record == expected | {"id": row["request_id"], "ts": rfc3339(row["ts"])}
        logged = (await ctl.get(f"/v1/orgs/{org_id}/requests")).json()["items"]
        assert sorted(logged, key=lambda r: r["id"]) == sorted(
            files["usage.ndjson"], key=lambda r: r["id"]
        )

        # Money: integers, the grant made through the API and the charge inserted.
        ledger = files["ledger.ndjson"]
        assert [(e["kind"], e["amount"]) for e in ledger] == [
            ("grant", 5_000_000),
            ("charge", -750_000),
        ]
        charge = a["ledger"][0]
        assert ledger[1]["task_id"] == charge["task_id"]
        assert ledger[1]["key_id"] == charge["key_id"]
        assert ledger[1]["created_at"] == rfc3339(charge["created_at"])
        assert all(type(e["amount"]) is int and type(e["id"]) is int for e in ledger)
        assert [r["id"] for r in files["reservations.ndjson"]] == [
            r["id"] for r in a["reservations"]
        ]
        for record, row in zip(files["reservations.ndjson"], a["reservations"], strict=True):
            assert record["amount"] == row["amount"] and type(record["amount"]) is int
            assert record["status"] == row["status"]
            assert record["task_id"] == row["task_id"]
            assert record["generate_audio"] is bool(row["generate_audio"])
            assert record["created_at"] == rfc3339(row["created_at"])
            assert record["settled_at"] == rfc3339(row["settled_at"])

        # Tasks with status and cost.
        for record, row in zip(files["tasks.ndjson"], a["tasks"], strict=True):
            for field in ("id", "key_id", "model", "status", "reserved", "charged", "tokens"):
                assert record[field] == row[field], field
            assert record["finished_at"] == rfc3339(row["finished_at"])
            assert parse_ts(record["created_at"]) == row["created_at"]

        # Deliveries: each event with its attempts and its payload (less the ingress URL).
        deliveries = files["webhook_deliveries.ndjson"]
        assert [d["id"] for d in deliveries] == [e["id"] for e in a["events"]]
        first, second = deliveries
        assert first["webhook_id"] == a["webhook_id"] and first["type"] == "task.succeeded"
        assert first["status"] == "delivered" and first["attempt_count"] == 2
        assert first["task_id"] == a["tasks"][0]["id"]
        assert first["created_at"] == rfc3339(T0 + 10)
        assert first["attempts"] == [
            {
                "id": attempt["id"],
                "attempted_at": rfc3339(row["attempted_at"]),
                "status": row["status"],
                "latency_ms": row["latency_ms"],
                "error": row["error"],
            }
            for attempt, row in zip(first["attempts"], a["attempts"], strict=True)
        ]
        assert first["attempts"][0]["id"] < first["attempts"][1]["id"]
        assert first["payload"] == a["payload"] | {"callback_url": None}
        assert second["attempts"] == [] and second["next_attempt_at"] == rfc3339(T0 + 60)
        assert INGRESS_PREFIX.encode() not in text

        # Audit: the org's, its keys', its webhook's, and entries naming it.
        audit = files["audit.ndjson"]
        actions = [(e["action"], e["target"]) for e in audit]
        assert ("org.create", org_id) in actions
        assert ("credits.grant", org_id) in actions
        for key in a["keys"]:
            assert ("key.create", key["id"]) in actions
        assert ("key.rotate", a["keys"][0]["id"]) in actions
        assert ("key.revoke", a["keys"][1]["id"]) in actions
        assert ("webhook.create", a["webhook_id"]) in actions
        assert ("webhook.rotate", a["webhook_id"]) in actions
        assert ("note", "adm_elsewhere") in actions
        assert len(audit) == 9
        assert [e["id"] for e in audit] == sorted(e["id"] for e in audit)
        assert all(parse_ts(e["ts"]) > 0 and isinstance(e["detail"], dict) for e in audit)

        # The manifest counts what is there.
        manifest = files["manifest.json"][0]
        assert manifest["format"] == "nextapi-export" and manifest["format_version"] == 1
        assert manifest["org_id"] == org_id
        assert abs(parse_ts(manifest["generated_at"]) - time.time()) < 60
        assert set(manifest["files"]) == FILES - {"manifest.json"}
        assert manifest["files"]["org.json"]["records"] == 1
        for name in NDJSON:
            assert manifest["files"][name] == {"format": "ndjson", "records": len(files[name])}
        counts = {n: manifest["files"][n]["records"] for n in NDJSON}
        assert counts == {
            "keys.ndjson": 2,
            "usage.ndjson": 3,
            "ledger.ndjson": 2,
            "reservations.ndjson": 2,
            "tasks.ndjson": 2,
            "payments.ndjson": 0,  # tests/unit/control/payments/ exports some
            "invoices.ndjson": 0,
            "disputes.ndjson": 0,
            "webhooks.ndjson": 1,
            "webhook_deliveries.ndjson": 2,
            "audit.ndjson": 9,
            "security_events.ndjson": 0,  # test_security_events.py exports some
        }

        # Nothing of the other org.
        for marker in (b["org_id"], "bravo", b["webhook_id"], *(k["id"] for k in b["keys"])):
            assert marker.encode() not in text, marker

        # No secret, no hash: in the uncompressed members nor in the bytes sent.
        hashes = await ctl.rows("SELECT secret_hash, previous_secret_hash FROM api_keys")
        tokens = await ctl.rows("SELECT token_hash FROM admin_tokens")
        hooks = await ctl.rows("SELECT secret, previous_secret FROM webhooks")
        forbidden = [
            "$argon2",
            "whsec_",
            ADMIN_TOKEN,
            *a["secrets"],
            *b["secrets"],
            *(secret_part(s) for s in a["secrets"]),
            *a["webhook_secrets"],
            *(row["token_hash"] for row in tokens),
            *(v for row in hashes + hooks for v in row.values() if v),
            "ingress-token",
        ]
        assert all(hooks[0].values()) and hashes[0]["previous_secret_hash"]
        for secret in forbidden:
            assert secret.encode() not in text, secret
            assert secret.encode() not in response.content, secret

    control_plane(body)


type OnBody = Callable[[dict[str, Any]], Awaitable[None]]


async def stream(
    ctl: Control, path: str, on_body: OnBody | None = None
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Call the app straight over ASGI (httpx's ASGI transport joins the body into one piece):
    the answer's headers and every body message as the app sent it; `on_body` sees each body
    message as it goes out (and may raise, as a server does for a client that went away)."""
    app = control.app.create_app(ctl.st)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"control"), (b"authorization", f"Bearer {ctl.token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("control", 80),
    }
    started: dict[str, Any] = {}
    bodies: list[dict[str, Any]] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            if on_body is not None:
                await on_body(message)
            bodies.append(message)

    await app(scope, receive, send)
    assert started["status"] == 200
    headers = {k.decode().lower(): v.decode() for k, v in started["headers"]}
    return headers, bodies


def test_export_streams_a_large_org(control_plane: ControlRunner) -> None:
    rows = 5000

    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        await insert(ctl, "usage", [usage_row(org["id"], key["id"], n, "big") for n in range(rows)])
        late = usage_row(org["id"], key["id"], rows, "late")
        written: list[int] = []

        async def write_meanwhile(message: dict[str, Any]) -> None:
            # Writes go on while the export streams (the first piece goes out in the middle of
            # usage.ndjson, before ledger.ndjson is read); the bundle is one snapshot without
            # them, its files and manifest agreeing.
            if message["body"] and not written:
                await insert(ctl, "usage", [late])
                grant = await ctl.post(f"/v1/orgs/{org['id']}/credits", json={"amount": 7})
                assert grant.status_code == 201, grant.text
                written.append(len(message["body"]))

        started = time.monotonic()
        headers, messages = await stream(ctl, f"/v1/orgs/{org['id']}/export", write_meanwhile)
        assert written
        assert time.monotonic() - started < 5
        assert headers["content-type"] == "application/zip"
        assert "content-length" not in headers
        assert headers["content-disposition"].startswith('attachment; filename="nextapi-export-')
        # Many pieces, each small, all but the last saying more follows: the bundle was sent as
        # it was made, never whole in memory.
        chunks = [m["body"] for m in messages if m["body"]]
        assert len(chunks) > 1, len(chunks)
        assert max(map(len, chunks)) < 256 * 1024
        assert all(m.get("more_body") for m in messages[:-1])
        assert not messages[-1].get("more_body")
        _, files, _ = read_bundle(b"".join(chunks))
        usage = files["usage.ndjson"]
        assert len(usage) == rows == files["manifest.json"][0]["files"]["usage.ndjson"]["records"]
        assert [r["ts"] for r in usage] == [rfc3339(T0 + n) for n in range(rows)]
        assert len({r["id"] for r in usage}) == rows
        assert late["request_id"].encode() not in b"".join(chunks)
        assert files["ledger.ndjson"] == []
        assert files["manifest.json"][0]["files"]["ledger.ndjson"]["records"] == 0
        assert "credits.grant" not in {e["action"] for e in files["audit.ndjson"]}
        # Through httpx (the body in one piece), and now with the row written meanwhile.
        assert ctl.client is not None
        async with ctl.client.stream(
            "GET", f"/v1/orgs/{org['id']}/export", headers=ctl.headers(ctl.token)
        ) as response:
            assert response.status_code == 200
            data = b"".join([chunk async for chunk in response.aiter_bytes()])
        _, again, _ = read_bundle(data)
        assert again["usage.ndjson"][:-1] == usage
        assert again["usage.ndjson"][-1]["id"] == late["request_id"]
        assert [e["amount"] for e in again["ledger.ndjson"]] == [7]

    control_plane(body)


def test_export_of_an_empty_org_and_pages_spanning_attempts(
    control_plane: ControlRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pages of 3 rows an event's attempts fall across pages; every event stays whole."""
    monkeypatch.setattr(control.api.export, "PAGE", 3)

    async def body(ctl: Control) -> None:
        empty = await ctl.create_org()
        _, files, _ = read_bundle((await export(ctl, empty["id"])).content)
        manifest = files["manifest.json"][0]
        assert {n: manifest["files"][n]["records"] for n in NDJSON} == {
            n: 1 if n == "audit.ndjson" else 0 for n in NDJSON
        }

        a = await populate(ctl, "paged", usage=10)
        event = a["events"][1]["id"]  # had no attempts: now 4
        await insert(
            ctl,
            "webhook_attempts",
            [
                {
                    "event_id": event,
                    "webhook_id": a["webhook_id"],
                    "attempted_at": T0 + 30 + n,
                    "status": 500,
                    "latency_ms": 5.0,
                    "error": None,
                }
                for n in range(4)
            ],
        )
        _, files, _ = read_bundle((await export(ctl, a["org_id"])).content)
        assert len(files["usage.ndjson"]) == 10
        deliveries = files["webhook_deliveries.ndjson"]
        assert [d["id"] for d in deliveries] == [e["id"] for e in a["events"]]
        assert [len(d["attempts"]) for d in deliveries] == [2, 4]
        assert [t["attempted_at"] for t in deliveries[1]["attempts"]] == [
            rfc3339(T0 + 30 + n) for n in range(4)
        ]

    control_plane(body)


def test_export_access(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        path = f"/v1/orgs/{org['id']}/export"
        assert_error(await ctl.get("/v1/orgs/org_0000000000000000/export"), 404, "NotFound")
        assert_error(await ctl.get(path, token=None), 401)
        assert_error(await ctl.get(path, token="nat_not-a-token"), 401)
        edge = await ctl.create_admin_token(["edge"])
        assert_error(await ctl.get(path, token=edge["token"]), 403)
        reader = await ctl.create_admin_token(["read"])
        response = await ctl.get(path, token=reader["token"])
        assert response.status_code == 200, response.text
        _, _, text = read_bundle(response.content)
        assert reader["token"].encode() not in text
        # A pure read: the export leaves no audit entry.
        before = await ctl.rows("SELECT count(*) AS n FROM audit")
        await export(ctl, org["id"])
        assert await ctl.rows("SELECT count(*) AS n FROM audit") == before

    control_plane(body)


def test_an_abandoned_export_lets_go_of_its_snapshot(control_plane: ControlRunner) -> None:
    """A client that goes away mid-stream: the export's read transaction ends (else the WAL
    could never be checkpointed again; on PostgreSQL, vacuum could not clean up behind it)."""

    async def body(ctl: Control) -> None:
        org = await ctl.create_org()
        key = await ctl.create_key(org["id"])
        await insert(
            ctl, "usage", [usage_row(org["id"], key["id"], n, "gone") for n in range(5000)]
        )

        async def hang_up(message: dict[str, Any]) -> None:
            raise OSError("client went away")

        with pytest.raises(Exception):  # noqa: B017 (whatever the server makes of it)
            await stream(ctl, f"/v1/orgs/{org['id']}/export", hang_up)
        # At once, not whenever the abandoned generator is collected: a checkpoint now takes in
        # the whole WAL, which a reader still holding its snapshot would prevent.
        await insert(ctl, "usage", [usage_row(org["id"], key["id"], 5000, "after")])
        grant = await ctl.post(f"/v1/orgs/{org['id']}/credits", json={"amount": 7})
        assert grant.status_code == 201, grant.text
        if ctl.database_url is not None:  # PostgreSQL: no session left in a transaction
            held = await ctl.rows(
                "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            )
            assert held == [{"n": 0}]
            return
        for rows in (ctl.rows, ctl.log_rows):  # both snapshots let go: the main file's, the log's
            _, wal, done = (await rows("PRAGMA wal_checkpoint(PASSIVE)"))[0].values()
            assert wal == done, (wal, done)

    control_plane(body)
