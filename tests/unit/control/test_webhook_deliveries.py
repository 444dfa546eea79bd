"""A webhook's delivery log over the admin API: newest first, paged by a cursor, each attempt
with its event's status and number of attempts."""

from __future__ import annotations

import time
from typing import Any

from tests.unit.conftest import Control, ControlRunner, assert_error


async def seed_deliveries(ctl: Control, events: int = 3) -> dict[str, Any]:
    """An org with a webhook and `events` events, each attempted twice (a 500, then a 200;
    the event's own `attempts` counts its failures: 1)."""
    org = await ctl.create_org(name="Hooked")
    made = await ctl.post(
        f"/v1/orgs/{org['id']}/webhooks",
        json={"url": "https://hooks.example.test/in", "events": ["task.succeeded"]},
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    now = time.time()
    async with ctl.st.transaction() as tx:
        for n in range(events):
            await tx.execute(
                "INSERT INTO webhook_events (id, webhook_id, org_id, task_id, type, payload, "
                "status, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (f"msg_{n}", hook["id"], org["id"], f"cgt-{n}", "task.succeeded", b"{}",
                 "delivered", 1, now - 100 + n, now - 100 + n),
            )  # fmt: skip
            for attempt, (status, error) in enumerate(((500, "HTTP 500"), (200, None))):
                await tx.execute(
                    "INSERT INTO webhook_attempts (event_id, webhook_id, attempted_at, status, "
                    "latency_ms, error) VALUES (?, ?, ?, ?, ?, ?)",
                    (f"msg_{n}", hook["id"], now - 90 + n * 2 + attempt, status, 12.5, error),
                )
    return {"org": org, "hook": hook, "path": f"/v1/orgs/{org['id']}/webhooks/{hook['id']}"}


def test_deliveries_are_paged_newest_first(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        seeded = await seed_deliveries(ctl, events=3)
        path = seeded["path"] + "/deliveries"
        everything = (await ctl.get(path)).json()
        assert everything["next_cursor"] is None
        items = everything["items"]
        assert [(d["event_id"], d["status"]) for d in items] == [
            ("msg_2", 200),
            ("msg_2", 500),
            ("msg_1", 200),
            ("msg_1", 500),
            ("msg_0", 200),
            ("msg_0", 500),
        ]
        assert all(d["event_attempts"] == 2 and d["event_status"] == "delivered" for d in items)
        assert items[1]["error"] == "HTTP 500" and items[0]["task_id"] == "cgt-2"

        paged: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(4):
            page = await ctl.get(
                path, params={"limit": 4, **({"cursor": cursor} if cursor else {})}
            )
            assert page.status_code == 200, page.text
            paged += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert paged == items

        csv = await ctl.get(path, params={"format": "csv", "limit": 4})  # every page
        lines = csv.text.strip().splitlines()
        assert csv.status_code == 200 and lines[0].startswith("event_id,type,task_id")
        assert [line.split(",")[0] for line in lines[1:]] == [d["event_id"] for d in items]

        assert_error(await ctl.get(path, params={"cursor": "!!"}), 400, "InvalidParameter")
        assert_error(await ctl.get(path, params={"limit": "0"}), 400, "InvalidParameter")

    control_plane(body)


def test_an_edge_apart_posts_task_statuses_to_the_outbox_once_each(
    control_plane: ControlRunner,
) -> None:
    """POST /v1/edge/events, through the edge's own client (RemoteEvents): an event per task and
    status, however often it is sent; a body that is no task is refused."""
    import httpx
    import msgpack

    from proxy.remote import ControlClient, RemoteEvents

    async def body(ctl: Control) -> None:
        assert ctl.app is not None
        seeded = await seed_deliveries(ctl, events=0)
        org_id = seeded["org"]["id"]
        now = time.time()
        await ctl.st.db.execute(
            "INSERT INTO tasks (id, org_id, key_id, model, service_tier, status, reserved, "
            "created_at, updated_at) VALUES ('cgt-new', ?, 'key', 'm', 'default', 'queued', 0, "
            "?, ?)",
            (org_id, now, now),
        )
        client = ControlClient("http://control", ctl.token, transport=httpx.ASGITransport(ctl.app))
        try:
            events = RemoteEvents(client)
            task = {"id": "cgt-new", "status": "succeeded"}
            assert await events.task_status(task) == 1
            assert await events.task_status(task) == 0  # sent again: still one event
            assert await events.task_status({"id": "cgt-new", "status": "running"}) == 0
        finally:
            await client.aclose()
        rows = await ctl.st.db.fetch_all(
            "SELECT task_id, type, status FROM webhook_events WHERE org_id=?", org_id
        )
        assert [tuple(row) for row in rows] == [("cgt-new", "task.succeeded", "pending")]
        refused = await ctl.post("/v1/edge/events", content=msgpack.packb({"task": "no"}))
        assert_error(refused, 400, "InvalidParameter")

    control_plane(body)
