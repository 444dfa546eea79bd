"""Several edges and the control plane sharing one S3-compatible video store (moto's server, with
SigV4 signatures checked): a copy made through one edge is served by another, and the control
plane's purge deletes it from the bucket for every edge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulator.app import fake_video
from tests.e2e.harness import TEXT_CREATE, Cluster, Simulator
from tests.s3server import BUCKET, REGION, Moto, moto_server

TASKS = "/api/v3/contents/generations/tasks"
VIDEO_BYTES = 200_003


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def cluster(tmp_path: Path, simulator: Simulator, moto: Moto) -> Iterator[Cluster]:
    store = f"s3://{BUCKET}/videos?endpoint={moto.endpoint}&region={REGION}"
    c = Cluster(
        tmp_path,
        simulator,
        env={
            "NEXTAPI_VIDEO_STORE": store,
            "NEXTAPI_S3_ACCESS_KEY_ID": moto.access_key,
            "NEXTAPI_S3_SECRET_ACCESS_KEY": moto.secret_key,
            "NEXTAPI_PUBLIC_URL": "auto",
            "NEXTAPI_RECONCILE_INTERVAL": "1000",
            "NEXTAPI_AUTH_FAILURES_PER_IP_PER_MINUTE": "100000",
        },
    )
    yield c
    c.stop()


def succeeded(client: httpx.Client, edge: str) -> dict:
    created = client.post(f"{edge}{TASKS}", json=TEXT_CREATE)
    assert created.status_code == 200, created.text
    task_id = created.json()["id"]
    deadline = time.monotonic() + 15
    while (task := client.get(f"{edge}{TASKS}/{task_id}").json())["status"] != "succeeded":
        assert time.monotonic() < deadline, task
        time.sleep(0.1)
    return task


def stored_size(moto: Moto, task_id: str) -> int:
    async def stat() -> int:
        store = moto.store(prefix="videos")
        try:
            info = await store.stat(f"{task_id}/video.mp4")
            return 0 if info is None else info.size
        finally:
            await store.aclose()

    return asyncio.run(stat())


def test_edges_apart_share_the_video_store_and_the_purge_reaches_it(
    cluster: Cluster, simulator: Simulator, moto: Moto
) -> None:
    simulator.configure(video_bytes=VIDEO_BYTES)
    try:
        first, second = cluster.edge(), cluster.edge()
        key = cluster.customer()
        with httpx.Client(timeout=15, headers={"Authorization": f"Bearer {key}"}) as client:
            deadline = time.monotonic() + 10
            while (ready := client.get(f"{first}{TASKS}", params={"warmup": 1})).status_code in (
                401,
                503,
            ):
                assert time.monotonic() < deadline, "the key never reached the edge"
                time.sleep(0.02)
            assert ready.status_code == 200
            task = succeeded(client, first)
            task_id = task["id"]
            link = task["content"]["video_url"]
            assert link.startswith(f"{first}/_nextapi/videos/{task_id}/video.mp4?")
            # The other edge sees the same task through the same copy: nothing fetched again.
            again = client.get(f"{second}{TASKS}/{task_id}").json()["content"]["video_url"]
            assert again.startswith(f"{second}/_nextapi/videos/{task_id}/video.mp4?")
            assert simulator.client.get("/_sim/downloads").json()[f"{task_id}.mp4"] == 1

            original = fake_video(f"{task_id}.mp4", VIDEO_BYTES)
            on_second = link.replace(first, second)  # made by one edge, served by the other
            assert httpx.get(on_second).content == original
            part = httpx.get(on_second, headers={"Range": "bytes=150000-150009"})
            assert part.status_code == 206 and part.content == original[150000:150010]
            assert stored_size(moto, task_id) == VIDEO_BYTES

            # Deleted through the other edge: gone from the bucket, for both edges, and the
            # control plane's task record says when.
            assert client.delete(f"{second}{TASKS}/{task_id}").status_code == 200
            assert stored_size(moto, task_id) == 0
            assert httpx.get(link).status_code == 410
            items = cluster.admin.get(f"/v1/orgs/{cluster.org_id}/tasks").json()["items"]
            (record,) = [item for item in items if item["id"] == task_id]
            assert record["video_deleted_at"] is not None

            kept = succeeded(client, second)
        kept_link = kept["content"]["video_url"]
        assert stored_size(moto, kept["id"]) == VIDEO_BYTES
        # The account is purged at once: the control plane deletes the copy from the bucket.
        purged = cluster.admin.delete(f"/v1/orgs/{cluster.org_id}", params={"purge": "now"})
        assert purged.status_code == 200, purged.text
        assert stored_size(moto, kept["id"]) == 0
        for edge in (first, second):
            gone = httpx.get(kept_link.replace(second, edge))
            assert gone.status_code == 410, gone.text
    finally:
        simulator.configure(video_bytes=32)
