"""The gateway's copies of videos: signed links, range requests, retention with an injected clock.

The upstream is the simulator over HTTP (in this process, on a free loopback port); the store
is a real directory; the control plane's sweep runs on a real SQLite file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from addons.failclosed import FailClosed
from addons.videos import Videos
from control.jobs.retention import Periods, Retention
from control.jobs.videos import VideoSweeper
from control.store import db as dbm
from control.store.state import ControlState
from launch.serving import AppServer
from proxy.context import METADATA_KEY, RequestContext
from proxy.core.seedance.routes import VIDEO, match
from proxy.core.video_assets import LocalAssetStore, check_key
from proxy.policy import OrgPolicy, Snapshot
from proxy.services import EdgeServices
from proxy.videos.byterange import ByteRange, Unsatisfiable, parse_range
from proxy.videos.delivery import DAY, VideoDelivery
from proxy.videos.links import LinkProblem, VideoLink, VideoLinks
from proxy.videos.origin import TOKEN_HEADER, VideoOrigin
from proxy.videos.stores import open_store
from simulator.app import SimulatorConfig, create_app, fake_video

NOW = 1_900_000_000  # 2030-03-17
SECRET = b"k" * 32
ORIGIN = "https://edge.example"
VIDEO_BYTES = 100_003  # not a multiple of anything the code might assume


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- ranges ------------------------------------------------------------------------------------


def test_ranges_are_parsed_as_rfc_9110_says() -> None:
    assert parse_range(None, 100, 10) is None
    assert parse_range("bytes=0-9", 100, 50) == ByteRange(0, 9)
    assert parse_range("bytes=90-200", 100, 50) == ByteRange(90, 99)  # clipped to the file
    assert parse_range("bytes=-10", 100, 50) == ByteRange(90, 99)  # the last 10 bytes
    assert parse_range("bytes=-500", 100, 200) == ByteRange(0, 99)
    # At most one chunk (50) from the start asked for; the Content-Range tells the client.
    assert parse_range("bytes=20-", 100, 50) == ByteRange(20, 69)
    assert parse_range("bytes=0-99", 100, 50) == ByteRange(0, 49)
    assert parse_range("bytes=-80", 100, 50) == ByteRange(20, 69)
    assert parse_range("bytes=80-", 100, 50) == ByteRange(80, 99)
    # What a server may ignore (the whole file is sent): several ranges, other units, junk.
    for ignored in ("bytes=0-1,5-6", "items=0-1", "bytes=5-2", "bytes=a-b", "bytes=-", "0-1"):
        assert parse_range(ignored, 100, 50) is None, ignored
    for unsatisfiable in ("bytes=100-", "bytes=150-160", "bytes=-0"):
        with pytest.raises(Unsatisfiable):
            parse_range(unsatisfiable, 100, 50)
    assert ByteRange(5, 9).length == 5


# --- links -------------------------------------------------------------------------------------


def split(url: str) -> tuple[str, dict[str, str]]:
    parsed = httpx.URL(url)
    return parsed.path, dict(parsed.params)


def test_links_are_signed_and_expire_before_their_retention_ends() -> None:
    links = VideoLinks(SECRET)
    link = VideoLink("cgt-1", "video.mp4", NOW + 100, NOW + 1000)
    path, query = split(ORIGIN + links.path(link))
    assert path == "/_nextapi/videos/cgt-1/video.mp4"
    assert links.read(path, query, NOW) == link
    assert links.read(path, query, NOW + 100) is LinkProblem.EXPIRED
    assert links.read(path, query, NOW + 1000) is LinkProblem.GONE
    # Each signed part changed, or another secret: a forgery.
    for changed in (
        {**query, "expires": str(NOW + 5000)},
        {**query, "retained": str(NOW + 9000)},
        {**query, "sig": "A" * 43},
    ):
        assert links.read(path, changed, NOW) is LinkProblem.FORGED
    assert links.read(path.replace("cgt-1", "cgt-2"), query, NOW) is LinkProblem.FORGED
    assert VideoLinks(b"o" * 32).read(path, query, NOW) is LinkProblem.FORGED
    for bad_path, bad_query in (
        ("/_nextapi/videos/cgt-1/../etc.mp4", query),
        ("/_nextapi/videos/cgt-1/secret.txt", query),
        (path, {k: v for k, v in query.items() if k != "sig"}),
        (path, {**query, "expires": "-1"}),
    ):
        assert links.read(bad_path, bad_query, NOW) is LinkProblem.MALFORMED
    assert match("GET", path) is VIDEO and match("HEAD", path) is VIDEO
    assert match("POST", path) is None


# --- the store ---------------------------------------------------------------------------------


def test_the_local_store_writes_whole_files_and_deletes_by_task(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = LocalAssetStore(tmp_path / "videos")
        source = tmp_path / "source"
        source.write_bytes(b"0123456789")
        await store.put_file("cgt-1/video.mp4", source, "video/mp4")
        await store.put_file("cgt-1/last_frame.png", source, "image/png")
        await store.put_file("cgt-2/video.mp4", source, "video/mp4")
        info = await store.stat("cgt-1/video.mp4")
        assert info is not None and (info.size, info.content_type) == (10, "video/mp4")
        assert await store.read("cgt-1/video.mp4", 3, 5) == b"345"
        assert not list((tmp_path / "videos" / "cgt-1").glob(".incoming-*"))
        assert await store.delete_prefix("cgt-1/") == 2
        assert await store.stat("cgt-1/video.mp4") is None
        assert await store.stat("cgt-2/video.mp4") is not None  # another task's copy stays
        assert await store.delete_prefix("cgt-1/") == 0
        for bad in ("../x/video.mp4", "cgt-1/../../video.mp4", "/abs/video.mp4", "cgt-1"):
            with pytest.raises(ValueError):
                check_key(bad)
        with pytest.raises(ValueError):
            await store.delete_prefix("../")

    asyncio.run(scenario())


def test_the_store_setting_names_a_directory_none_or_off(tmp_path: Path) -> None:
    assert isinstance(open_store("", tmp_path, {}), LocalAssetStore)
    assert open_store("", None, {}) is None  # an edge apart: no default store
    assert open_store("off", tmp_path, {}) is None
    custom = open_store(str(tmp_path / "v"), None, {})
    assert isinstance(custom, LocalAssetStore) and custom.root == tmp_path / "v"
    with pytest.raises(ValueError):
        open_store("ftp://somewhere", tmp_path, {})


# --- copying -----------------------------------------------------------------------------------


class Upstream:
    """The simulator on a free loopback port, serving videos of VIDEO_BYTES."""

    def __init__(self) -> None:
        self.app = create_app(SimulatorConfig(video_bytes=VIDEO_BYTES))
        self.server = AppServer(self.app, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.port}"

    def task(self, task_id: str, ended: float, *, frame: bool = True) -> dict[str, Any]:
        content = {"video_url": f"{self.url}/_sim/videos/{task_id}.mp4"}
        if frame:
            content["last_frame_url"] = f"{self.url}/_sim/frames/{task_id}.png"
        return {"id": task_id, "status": "succeeded", "updated_at": int(ended), "content": content}

    async def downloads(self) -> dict[str, int]:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{self.url}/_sim/downloads")).json()


def with_upstream(body: Callable[[Upstream], Awaitable[None]]) -> None:
    async def main() -> None:
        upstream = Upstream()
        await upstream.server.start()
        try:
            await body(upstream)
        finally:
            await upstream.server.stop()

    asyncio.run(main())


def delivery(tmp_path: Path, clock: Clock, ttl: float = DAY) -> VideoDelivery:
    store = LocalAssetStore(tmp_path / "videos")
    return VideoDelivery(store, VideoLinks(SECRET), link_ttl=ttl, clock=clock)


def test_a_succeeded_task_is_copied_once_and_its_links_rewritten(tmp_path: Path) -> None:
    async def body(upstream: Upstream) -> None:
        clock = Clock()
        videos = delivery(tmp_path, clock)
        task = upstream.task("cgt-a", NOW - 60)
        # Concurrent sights of the same success share one copy.
        shown, again = await asyncio.gather(
            videos.localize(task, 7, ORIGIN), videos.localize(task, 7, ORIGIN)
        )
        assert shown == again
        content = shown["content"]
        assert content["video_url"].startswith(f"{ORIGIN}/_nextapi/videos/cgt-a/video.mp4?")
        assert content["last_frame_url"].startswith(
            f"{ORIGIN}/_nextapi/videos/cgt-a/last_frame.png?"
        )
        retained = NOW - 60 + 7 * DAY
        assert shown["video_retention"] == {"retained_until": retained, "deleted": False}
        _, query = split(content["video_url"])
        assert query["expires"] == str(NOW + DAY) and query["retained"] == str(retained)
        assert task["content"]["video_url"].startswith(upstream.url)  # the input is not changed
        stored = (tmp_path / "videos" / "cgt-a" / "video.mp4").read_bytes()
        assert stored == fake_video("cgt-a.mp4", VIDEO_BYTES)
        assert (tmp_path / "videos" / "cgt-a" / "last_frame.png").stat().st_size > 0
        assert await videos.localize(task, 7, ORIGIN) == shown  # no second copy
        assert await upstream.downloads() == {"cgt-a.mp4": 1, "cgt-a.png": 1}
        # Another edge (a new process) finds the copy in the shared store.
        other = delivery(tmp_path, clock)
        assert (await other.localize(task, 7, ORIGIN))["content"] == content
        assert (await upstream.downloads())["cgt-a.mp4"] == 1
        await videos.aclose()
        await other.aclose()

    with_upstream(body)


def test_links_never_outlive_the_retention_and_a_late_sight_copies_nothing(tmp_path: Path) -> None:
    async def body(upstream: Upstream) -> None:
        clock = Clock()
        videos = delivery(tmp_path, clock, ttl=30 * DAY)
        shown = await videos.localize(upstream.task("cgt-b", NOW - 6 * DAY), 7, ORIGIN)
        _, query = split(shown["content"]["video_url"])
        assert query["expires"] == query["retained"] == str(NOW + DAY)
        # Seen first after its retention ended: nothing is copied, the links answer Gone.
        late = await videos.localize(upstream.task("cgt-c", NOW - 8 * DAY), 7, ORIGIN)
        assert late["video_retention"] == {"retained_until": NOW - DAY, "deleted": True}
        path, query = split(late["content"]["video_url"])
        assert videos.links.read(path, query, NOW) is LinkProblem.GONE
        assert "cgt-c.mp4" not in await upstream.downloads()
        await videos.aclose()

    with_upstream(body)


def test_what_is_not_a_fresh_success_passes_unchanged(tmp_path: Path) -> None:
    async def body(upstream: Upstream) -> None:
        videos = delivery(tmp_path, Clock())
        running = {"id": "cgt-r", "status": "running", "updated_at": NOW}
        assert await videos.localize(running, 7, ORIGIN) is running
        task = upstream.task("cgt-d", NOW)
        assert await videos.localize(task, 7, "") is task  # no public URL: no links to give
        shown = await videos.localize(task, 7, ORIGIN)
        assert await videos.localize(shown, 7, ORIGIN) is shown  # already the gateway's links
        # The upstream's file unreachable: its own links stay (they work for a day), no error.
        broken = upstream.task("cgt-e", NOW)
        broken["content"]["video_url"] = "http://127.0.0.1:9/_sim/videos/cgt-e.mp4"
        assert await videos.localize(broken, 7, ORIGIN) is broken
        missing = upstream.task("cgt-f", NOW, frame=False)
        missing["content"]["video_url"] = f"{upstream.url}/_sim/nothing-here"
        assert await videos.localize(missing, 7, ORIGIN) is missing
        assert not (tmp_path / "videos" / "cgt-f").exists()
        await videos.aclose()

    with_upstream(body)


# --- serving -----------------------------------------------------------------------------------


def video_flow(url: str, method: str = "GET", **headers: str) -> http.HTTPFlow:
    parsed = httpx.URL(url)
    target = parsed.raw_path.decode()
    request = tutils.treq(
        method=method.encode(),
        path=target.encode(),
        headers=http.Headers([(k.encode(), v.encode()) for k, v in headers.items()]),
        content=b"",
    )
    f = tflow.tflow(req=request)
    f.metadata[METADATA_KEY] = RequestContext("req_video", match(method, parsed.path), None)
    return f


class Edge:
    """The Videos addon with a real store and the clock under the test's control."""

    def __init__(self, videos: VideoDelivery) -> None:
        self.services = EdgeServices(videos=videos, public_url=ORIGIN)
        self.addon = Videos(self.services)

    async def fetch(self, url: str, method: str = "GET", **headers: str) -> http.Response:
        f = video_flow(url, method, **headers)
        await self.addon.request(f)
        assert f.response is not None
        return f.response


def error_code(response: http.Response) -> str:
    return json.loads(response.content or b"")["error"]["code"]


def test_the_edge_serves_ranges_and_refuses_bad_links(tmp_path: Path) -> None:
    async def body(upstream: Upstream) -> None:
        clock = Clock()
        videos = delivery(tmp_path, clock)
        edge = Edge(videos)
        original = fake_video("cgt-g.mp4", VIDEO_BYTES)
        with taddons.context(edge.addon) as tctx:
            tctx.configure(edge.addon, nextapi_video_chunk_bytes=4096)
            shown = await videos.localize(upstream.task("cgt-g", NOW), 7, ORIGIN)
            url = shown["content"]["video_url"]

            whole = await edge.fetch(url)
            assert whole.status_code == 200 and whole.content == original
            assert whole.headers["content-type"] == "video/mp4"
            assert whole.headers["accept-ranges"] == "bytes"
            assert whole.headers["cache-control"] == f"private, max-age={DAY}"

            part = await edge.fetch(url, range="bytes=1000-1999")
            assert part.status_code == 206 and part.content == original[1000:2000]
            assert part.headers["content-range"] == f"bytes 1000-1999/{VIDEO_BYTES}"
            assert part.headers["content-length"] == "1000"
            tail = await edge.fetch(url, range="bytes=-3")
            assert tail.content == original[-3:]
            seek = await edge.fetch(url, range="bytes=50000-")  # one chunk of 4096
            assert seek.content == original[50000:54096]
            assert seek.headers["content-range"] == f"bytes 50000-54095/{VIDEO_BYTES}"

            head = await edge.fetch(url, "HEAD")
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-length"] == str(VIDEO_BYTES)

            beyond = await edge.fetch(url, range=f"bytes={VIDEO_BYTES}-")
            assert beyond.status_code == 416
            assert beyond.headers["content-range"] == f"bytes */{VIDEO_BYTES}"

            frame = await edge.fetch(shown["content"]["last_frame_url"])
            assert frame.status_code == 200 and frame.headers["content-type"] == "image/png"

            forged = url.replace("sig=", "sig=A")[: len(url)]
            assert (await edge.fetch(forged)).status_code == 404
            other_task = url.replace("cgt-g", "cgt-h")
            assert (await edge.fetch(other_task)).status_code == 404

            clock.now = NOW + DAY  # the link's own day is over: a fresh get gives a new one
            expired = await edge.fetch(url)
            assert expired.status_code == 403 and error_code(expired) == "AccessDenied"
            fresh = (await videos.localize(upstream.task("cgt-g", NOW), 7, ORIGIN))["content"]
            assert (await edge.fetch(fresh["video_url"])).status_code == 200

            await videos.forget("cgt-g")  # the customer deleted the task
            deleted = await edge.fetch(fresh["video_url"])
            assert deleted.status_code == 410 and error_code(deleted) == "VideoDeleted"
            assert deleted.headers["x-should-retry"] == "false"
        await videos.aclose()

    with_upstream(body)


def test_without_a_store_the_route_is_not_there() -> None:
    async def scenario() -> None:
        addon = Videos(EdgeServices())
        with taddons.context(addon):
            f = video_flow(f"{ORIGIN}/_nextapi/videos/cgt-1/video.mp4?expires=1&retained=2&sig=x")
            await addon.request(f)
            assert f.response is not None and f.response.status_code == 404

    asyncio.run(scenario())


# --- retention, edge and control plane together ------------------------------------------------


async def add_task(state: ControlState, task_id: str, org_id: str, finished: float) -> None:
    await state.db.execute(
        "INSERT INTO tasks (id, org_id, key_id, status, created_at, updated_at, finished_at) "
        "VALUES (?, ?, 'k1', 'succeeded', ?, ?, ?)",
        (task_id, org_id, finished - 60, finished, finished),
    )


async def add_org(state: ControlState, org_id: str, days: int) -> None:
    await state.db.execute(
        "INSERT INTO orgs (id, name, email, video_retention_days, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, 0, 0)",
        (org_id, org_id, f"{org_id}@example.com", days),
    )


def test_a_video_link_works_until_the_retention_ends_then_answers_gone(tmp_path: Path) -> None:
    async def body(upstream: Upstream) -> None:
        clock = Clock()
        videos = delivery(tmp_path, clock, ttl=30 * DAY)
        edge = Edge(videos)
        state = await ControlState.open(tmp_path / "control")
        retention = Retention(
            state, Periods(), clock=clock, videos=VideoSweeper(state, videos.store, batch=2)
        )
        try:
            await add_org(state, "org_short", 7)
            await add_org(state, "org_long", 30)
            edge.services.policy.replace(
                Snapshot(
                    version=1,
                    orgs={
                        "org_short": OrgPolicy("org_short", "active", video_retention_days=7),
                        "org_long": OrgPolicy("org_long", "active", video_retention_days=30),
                    },
                )
            )
            urls = {}
            for task_id, org_id in (
                ("cgt-s1", "org_short"),
                ("cgt-s2", "org_short"),
                ("cgt-s3", "org_short"),
                ("cgt-l1", "org_long"),
            ):
                await add_task(state, task_id, org_id, NOW)
                shown = await edge.services.present(upstream.task(task_id, NOW), org_id)
                urls[task_id] = shown["content"]["video_url"]
            with taddons.context(edge.addon):
                clock.now = NOW + 7 * DAY - 1  # the last second of the short retention
                assert (await retention.purge()).counts["videos"] == 0
                assert (await edge.fetch(urls["cgt-s1"])).status_code == 200

                clock.now = NOW + 7 * DAY
                dry = await retention.purge(dry_run=True)
                assert dry.counts["videos"] == 3
                assert (tmp_path / "videos" / "cgt-s1" / "video.mp4").exists()
                assert (await retention.purge()).counts["videos"] == 3  # batches of 2
                for task_id in ("cgt-s1", "cgt-s2", "cgt-s3"):
                    assert not (tmp_path / "videos" / task_id).exists()
                    gone = await edge.fetch(urls[task_id])
                    assert gone.status_code == 410 and error_code(gone) == "VideoDeleted"
                # The other org keeps its videos for its own 30 days.
                assert (await edge.fetch(urls["cgt-l1"])).status_code == 200
                rows = await dbm.fetch_all(
                    state.db, "SELECT id, video_deleted_at FROM tasks ORDER BY id"
                )
                assert {r["id"]: r["video_deleted_at"] for r in rows} == {
                    "cgt-l1": None,
                    "cgt-s1": NOW + 7 * DAY,
                    "cgt-s2": NOW + 7 * DAY,
                    "cgt-s3": NOW + 7 * DAY,
                }
                assert (await retention.purge()).counts["videos"] == 0  # done once

                clock.now = NOW + 30 * DAY
                # Even before the sweep runs, the edge stops at the end of the retention.
                assert (await edge.fetch(urls["cgt-l1"])).status_code == 410
                assert (await retention.purge()).counts["videos"] == 1
        finally:
            await state.close()
            await videos.aclose()

    with_upstream(body)


def test_purging_an_account_deletes_its_videos_with_it(tmp_path: Path) -> None:
    async def body(upstream: Upstream) -> None:
        clock = Clock()
        videos = delivery(tmp_path, clock)
        state = await ControlState.open(tmp_path / "control")
        retention = Retention(state, clock=clock, videos=VideoSweeper(state, videos.store))
        try:
            await add_org(state, "org_a", 7)
            await add_org(state, "org_b", 7)
            for task_id, org_id in (("cgt-a1", "org_a"), ("cgt-b1", "org_b")):
                await add_task(state, task_id, org_id, NOW)
                await videos.localize(upstream.task(task_id, NOW), 7, ORIGIN)
            counts = await retention.purge_org("org_a")
            assert counts["videos"] == 1
            assert not (tmp_path / "videos" / "cgt-a1").exists()
            assert (tmp_path / "videos" / "cgt-b1" / "video.mp4").exists()
        finally:
            await state.close()
            await videos.aclose()

    with_upstream(body)


# --- whole files, streamed -----------------------------------------------------------------------


def test_the_loopback_origin_streams_whole_files_to_the_edge_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = LocalAssetStore(tmp_path / "videos")
        source = tmp_path / "source"
        content = fake_video("cgt-o.mp4", 3 * 2**20 + 5)  # several reads of 1 MiB
        source.write_bytes(content)
        await store.put_file("cgt-o/video.mp4", source, "video/mp4")
        origin = VideoOrigin(store)
        transport = httpx.ASGITransport(app=origin.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://origin") as client:
            token = {TOKEN_HEADER: origin.token}
            whole = await client.get("/cgt-o/video.mp4", headers=token)
            assert whole.status_code == 200 and whole.content == content
            assert whole.headers["content-length"] == str(len(content))
            assert whole.headers["content-type"] == "video/mp4"
            assert origin.streams == 1
            # Without the edge's token, or for what is not a key: nothing is here.
            assert (await client.get("/cgt-o/video.mp4")).status_code == 404
            wrong = {TOKEN_HEADER: ("y" if origin.token[0] == "x" else "x") + origin.token[1:]}
            assert (await client.get("/cgt-o/video.mp4", headers=wrong)).status_code == 404
            assert (await client.get("/cgt-o/passwd", headers=token)).status_code == 404
            assert (await client.get("/cgt-x/video.mp4", headers=token)).status_code == 410
            assert origin.streams == 1

    asyncio.run(scenario())


def test_a_large_whole_download_is_forwarded_to_the_origin_and_streamed(tmp_path: Path) -> None:
    async def body(upstream: Upstream) -> None:
        videos = delivery(tmp_path, Clock())
        edge = Edge(videos)
        origin = edge.services.video_origin = VideoOrigin(videos.store)
        origin.address = ("127.0.0.1", 41000)
        with taddons.context(edge.addon, FailClosed()) as tctx:
            tctx.configure(edge.addon, nextapi_video_chunk_bytes=4096)
            url = (await videos.localize(upstream.task("cgt-w", NOW), 7, ORIGIN))["content"]
            f = video_flow(url["video_url"], authorization="Bearer nk_live_x", cookie="a=b")
            await edge.addon.request(f)
            assert f.response is None  # not answered from memory: sent on
            assert (f.request.scheme, f.request.host, f.request.port) == ("http", *origin.address)
            assert f.request.path == "/cgt-w/video.mp4"
            # Nothing of the client's request goes along but the path.
            assert dict(f.request.headers) == {
                "host": "127.0.0.1:41000",
                TOKEN_HEADER: origin.token,
            }
            FailClosed().request(f)
            assert f.response is None  # the one destination FailClosed lets pass
            f.response = tutils.tresp(status_code=200, headers=http.Headers(), content=b"")
            edge.addon.responseheaders(f)
            assert f.response.stream is True
            assert f.response.headers["accept-ranges"] == "bytes"
            assert f.response.headers["x-request-id"] == "req_video"

            # Sent anywhere else afterwards (another addon's bug): refused, not relayed.
            moved = video_flow(url["video_url"])
            await edge.addon.request(moved)
            moved.request.host = "ark.example"
            FailClosed().request(moved)
            assert moved.response is not None and moved.response.status_code == 500

            # A range, or a file within one chunk, is still answered by the addon itself.
            ranged = video_flow(url["video_url"], range="bytes=0-99")
            await edge.addon.request(ranged)
            assert ranged.response is not None and ranged.response.status_code == 206
        await videos.aclose()

    with_upstream(body)
