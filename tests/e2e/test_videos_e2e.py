"""Videos delivered by the gateway, and an account's closure, end to end: the real edge, control
plane and simulator on loopback, the official SDK, a webhook receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from byteplussdkarkruntime import Ark

from simulator.app import fake_video
from tests.e2e.harness import Gateway, Receiver, Simulator

MODEL = "seedance-1-0-pro-250528"
CONTENT = [{"type": "text", "text": "a paper boat on a canal --rs 480p --dur 2"}]
VIDEO_BYTES = 300_007
CHUNK = 65_536
DAY = 86400


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """The module's own simulator: these tests move its clock and its video size."""
    s = Simulator("--queued-seconds", "0.2", "--running-seconds", "0.3")
    s.configure(video_bytes=VIDEO_BYTES)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    g = Gateway(
        tmp_path_factory.mktemp("videos"),
        sim.url,
        sim.api_key,
        env={
            "NEXTAPI_PUBLIC_URL": "auto",
            "NEXTAPI_RECONCILE_INTERVAL": "1000",
            # Smaller than the videos: whole downloads are streamed, ranges answered in chunks.
            "NEXTAPI_VIDEO_CHUNK_BYTES": str(CHUNK),
        },
    )
    yield g
    g.stop()


def sdk(gw: Gateway, key: str) -> Ark:
    return Ark(base_url=gw.base_url, api_key=key, max_retries=0, timeout=15)


def wait_succeeded(client: Ark, task_id: str):
    deadline = time.monotonic() + 15
    while (task := client.content_generation.tasks.get(task_id=task_id)).status != "succeeded":
        assert task.status in ("queued", "running"), task.status
        assert time.monotonic() < deadline, "the task never finished"
        time.sleep(0.1)
    return task


def metric(gw: Gateway, name: str) -> int:
    for line in gw.admin.get("/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return int(line.split()[1])
    raise AssertionError(f"{name} is not in /metrics")


def downloads(sim: Simulator) -> dict[str, int]:
    return sim.client.get("/_sim/downloads").raise_for_status().json()


def test_videos_come_from_the_gateway_with_ranges_in_gets_lists_and_webhooks(
    gw: Gateway, sim: Simulator
) -> None:
    receiver = Receiver()
    try:
        org = gw.create_org()
        key = gw.create_key(org["id"])["key"]
        hook = gw.admin.post(f"/v1/orgs/{org['id']}/webhooks", json={"url": receiver.url})
        assert hook.status_code == 201, hook.text
        client = sdk(gw, key)
        created = client.content_generation.tasks.create(
            model=MODEL, content=CONTENT, callback_url=receiver.url, return_last_frame=True
        )
        task = wait_succeeded(client, created.id)
        assert task.content is not None
        video_url = task.content.video_url
        assert video_url.startswith(f"{gw.edge_url}/_nextapi/videos/{task.id}/video.mp4?")
        assert task.content.last_frame_url.startswith(f"{gw.edge_url}/_nextapi/videos/")
        retention = task.model_extra["video_retention"]
        assert retention["deleted"] is False
        assert 7 * DAY - 60 < retention["retained_until"] - time.time() <= 7 * DAY

        original = fake_video(f"{task.id}.mp4", VIDEO_BYTES)
        with httpx.Client(timeout=15) as http:  # no API key: the link is the credential
            streams = metric(gw, "nextapi_video_streams_total")
            whole = http.get(video_url)
            assert whole.status_code == 200 and whole.content == original
            assert whole.headers["content-type"] == "video/mp4"
            assert whole.headers["accept-ranges"] == "bytes"
            assert whole.headers["x-request-id"].startswith("req_")
            # Larger than a chunk: relayed from the loopback origin, streamed, not held whole.
            assert metric(gw, "nextapi_video_streams_total") == streams + 1
            part = http.get(video_url, headers={"Range": "bytes=100000-100099"})
            assert part.status_code == 206 and part.content == original[100000:100100]
            assert part.headers["content-range"] == f"bytes 100000-100099/{VIDEO_BYTES}"
            rest = http.get(video_url, headers={"Range": "bytes=200000-"})
            assert rest.content == original[200000 : 200000 + CHUNK]
            assert rest.headers["content-range"] == f"bytes 200000-265535/{VIDEO_BYTES}"
            assert http.head(video_url).headers["content-length"] == str(VIDEO_BYTES)
            frame = http.get(task.content.last_frame_url)
            assert frame.status_code == 200 and frame.headers["content-type"] == "image/png"
            other = "y" if task.id.endswith("x") else "x"  # another task's link, never this one's
            forged = video_url.replace(task.id, task.id[:-1] + other)
            assert http.get(forged).status_code == 404

            # One copy, however many times the task is seen (gets, list, callbacks).
            listed = client.content_generation.tasks.list(page_size=10, task_ids=[task.id])
            (item,) = listed.items
            assert item.content.video_url.startswith(f"{gw.edge_url}/_nextapi/videos/{task.id}/")
            assert downloads(sim)[f"{task.id}.mp4"] == 1

            receiver.wait(
                lambda: any(p["status"] == "succeeded" for _, p in receiver.events(task.id)),
                "a succeeded event",
            )
            (_, event), *_ = [e for e in receiver.events(task.id) if e[1]["status"] == "succeeded"]
            hooked = event["content"]["video_url"]
            assert hooked.startswith(f"{gw.edge_url}/_nextapi/videos/{task.id}/video.mp4?")
            assert http.get(hooked).content == original

            def record() -> dict:
                items = gw.admin.get(f"/v1/orgs/{org['id']}/tasks").json()["items"]
                return next(item for item in items if item["id"] == task.id)

            assert record()["video_deleted_at"] is None
            # Deleting the task deletes the gateway's copy: its links answer Gone, and the
            # task record says when.
            client.content_generation.tasks.delete(task_id=task.id)
            gone = http.get(video_url)
            assert gone.status_code == 410
            assert gone.json()["error"]["code"] == "VideoDeleted"
            assert record()["video_deleted_at"] is not None
    finally:
        receiver.close()


def test_a_video_past_its_retention_is_not_copied_and_its_link_is_gone(
    gw: Gateway, sim: Simulator
) -> None:
    org = gw.create_org(video_retention_days=3)
    client = sdk(gw, gw.create_key(org["id"])["key"])
    sim.configure(clock_offset=-4 * DAY)  # the upstream's tasks end four days ago
    try:
        created = client.content_generation.tasks.create(model=MODEL, content=CONTENT)
        task = wait_succeeded(client, created.id)
    finally:
        sim.configure(clock_offset=0)
    assert task.model_extra["video_retention"]["deleted"] is True
    gone = httpx.get(task.content.video_url, timeout=15)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "VideoDeleted"
    assert f"{task.id}.mp4" not in downloads(sim)  # nothing was copied


def test_closing_an_org_cancels_its_queued_tasks_and_refuses_its_keys(
    gw: Gateway, sim: Simulator
) -> None:
    org = gw.create_org()
    key = gw.create_key(org["id"])["key"]
    client = sdk(gw, key)
    try:
        sim.configure(queued_seconds=0, running_seconds=600)  # running: cannot be stopped
        running = client.content_generation.tasks.create(model=MODEL, content=CONTENT)
        sim.configure(queued_seconds=600)  # stays queued: cancellable
        queued = client.content_generation.tasks.create(model=MODEL, content=CONTENT)
    finally:
        sim.configure(queued_seconds=0.2, running_seconds=0.3)
    balance = gw.admin.get(f"/v1/orgs/{org['id']}/balance").json()

    closed = gw.admin.delete(f"/v1/orgs/{org['id']}")
    assert closed.status_code == 200, closed.text
    started = time.monotonic()
    assert closed.json()["tasks"] == {"cancelled": [queued.id], "left_running": [running.id]}

    def upstream_status(task_id: str) -> str:
        answer = sim.client.get(
            f"/api/v3/contents/generations/tasks/{task_id}",
            headers={"Authorization": f"Bearer {sim.api_key}"},
        )
        return answer.json()["status"]

    # The queued one is cancelled upstream and its credit hold released; the running one goes
    # on, its hold kept until it ends (and is settled like any other).
    assert upstream_status(queued.id) == "cancelled"
    assert upstream_status(running.id) == "running"
    after = gw.admin.get(f"/v1/orgs/{org['id']}/balance").json()
    assert 0 < after["reserved"] < balance["reserved"], (balance, after)
    assert after["reserved"] == balance["reserved"] // 2  # the two holds are equal

    # The org's key is refused within a second of the closure.
    with httpx.Client(base_url=gw.edge_url, timeout=5) as http:
        while True:
            answer = http.get(
                f"/api/v3/contents/generations/tasks/{queued.id}",
                headers={"Authorization": f"Bearer {key}"},
            )
            if answer.status_code == 401:
                break
            assert time.monotonic() - started < 1.0, answer.status_code
            time.sleep(0.02)
    audit = gw.admin.get("/v1/audit", params={"limit": 50}).json()["items"]
    cancels = [e for e in audit if e["action"] == "org.cancel_tasks" and e["target"] == org["id"]]
    assert [e["detail"] for e in cancels] == [closed.json()["tasks"]]
