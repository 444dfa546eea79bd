"""Videos delivered by the gateway itself: the upstream's links expire after 24 hours, and the
privacy policy promises videos are kept for the org's retention period, then deleted.

When the edge first sees a task succeed (a get, a list, a callback, the reconciler), it copies
the video and the last frame into its asset store and gives the customer its own signed links
instead (get, list and webhooks alike). A failed copy leaves the upstream's links in place (they
still work for a day) and is tried again on the next sight.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from proxy.core.video_assets import AssetError, AssetStore, content_type_of
from proxy.videos.links import VideoLink, VideoLinks, is_ours

log = logging.getLogger(__name__)

DAY = 86400
# The fields of a task's `content` the gateway delivers, with the name of its copy.
ASSETS = {"video_url": "video", "last_frame_url": "last_frame"}
# The file types each asset may have (by the upstream's Content-Type); the first is the default.
EXTENSIONS = {
    "video": {"video/mp4": "mp4"},
    "last_frame": {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"},
}
DEFAULT_EXTENSION = {kind: next(iter(types.values())) for kind, types in EXTENSIONS.items()}
STORED_CACHED = 100_000


class CopyFailed(Exception):
    pass


class VideoDelivery:
    def __init__(
        self,
        store: AssetStore,
        links: VideoLinks,
        *,
        link_ttl: float = DAY,
        max_bytes: int = 512 * 2**20,
        fetch_timeout: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.links = links
        self.link_ttl = link_ttl
        self.max_bytes = max_bytes
        self.clock = clock
        self.copies = 0  # assets copied by this process
        self._client = httpx.AsyncClient(timeout=fetch_timeout, follow_redirects=True)
        self._stored: OrderedDict[str, dict[str, str]] = OrderedDict()  # task -> field -> name
        self._copying: dict[str, asyncio.Future[dict[str, str]]] = {}

    async def aclose(self) -> None:
        await self._client.aclose()  # the store is its owner's to close

    async def localize(
        self, task: dict[str, Any], retention_days: int, origin: str
    ) -> dict[str, Any]:
        """The task as the customer sees it: a succeeded task's links point at the gateway's
        copies (made now if need be). Anything else comes back as it was."""
        content = task.get("content")
        task_id = task.get("id")
        if task.get("status") != "succeeded" or not isinstance(content, dict) or not origin:
            return task
        sources = {f: u for f, u in content.items() if f in ASSETS and isinstance(u, str) and u}
        if not isinstance(task_id, str) or not sources or any(map(is_ours, sources.values())):
            return task
        now = self.clock()
        ended = task.get("updated_at")
        ended = ended if isinstance(ended, int | float) and 0 < ended <= now else now
        # Retention runs from the task's end, as the control plane's purge counts it.
        retained = int(ended + retention_days * DAY)
        deleted = now >= retained
        if deleted:
            names = {f: f"{ASSETS[f]}.{DEFAULT_EXTENSION[ASSETS[f]]}" for f in sources}
        else:
            try:
                names = await self.copy(task_id, sources)
            except (CopyFailed, AssetError, OSError) as exc:
                log.warning("task %s: video not copied yet (%s); upstream links kept", task_id, exc)
                return task
        expires = min(int(now + self.link_ttl), retained)
        localized = dict(content)
        for field_name, name in names.items():
            link = VideoLink(task_id, name, expires, retained)
            localized[field_name] = origin.rstrip("/") + self.links.path(link)
        return {
            **task,
            "content": localized,
            "video_retention": {"retained_until": retained, "deleted": deleted},
        }

    async def copy(self, task_id: str, sources: dict[str, str]) -> dict[str, str]:
        """Copies a task's assets into the store once (concurrent sights share one copy);
        returns the stored name of each field."""
        stored = self._stored.get(task_id)
        if stored is not None and stored.keys() >= sources.keys():
            return stored
        running = self._copying.get(task_id)
        if running is None:
            running = asyncio.ensure_future(self._copy(task_id, sources))
            self._copying[task_id] = running
            running.add_done_callback(lambda _: self._copying.pop(task_id, None))
        return await asyncio.shield(running)

    async def _copy(self, task_id: str, sources: dict[str, str]) -> dict[str, str]:
        names: dict[str, str] = {}
        for field_name, url in sources.items():
            names[field_name] = await self._copy_one(task_id, ASSETS[field_name], url)
        self._stored[task_id] = names
        self._stored.move_to_end(task_id)
        while len(self._stored) > STORED_CACHED:
            self._stored.popitem(last=False)
        return names

    async def _copy_one(self, task_id: str, kind: str, url: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise CopyFailed(f"{kind}: not an http(s) URL")
        # Another edge (or this one, before a restart) may have copied it already.
        for extension in EXTENSIONS[kind].values():
            if await self.store.stat(f"{task_id}/{kind}.{extension}") is not None:
                return f"{kind}.{extension}"
        with tempfile.TemporaryDirectory(prefix="nextapi-video-") as folder:
            path = Path(folder) / kind
            content_type = await self._download(url, path)
            extension = EXTENSIONS[kind].get(content_type, DEFAULT_EXTENSION[kind])
            name = f"{kind}.{extension}"
            # Served with the type its name says, from any store.
            await self.store.put_file(f"{task_id}/{name}", path, content_type_of(name))
        self.copies += 1
        return name

    async def _download(self, url: str, path: Path) -> str:
        """Streams the upstream's file to disk (a video may be large); returns its type."""
        try:
            async with self._client.stream("GET", url) as answer:
                if answer.status_code != 200:
                    raise CopyFailed(f"the upstream answered {answer.status_code}")
                size = 0
                with path.open("wb") as out:
                    async for chunk in answer.aiter_bytes(1 << 20):
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise CopyFailed(f"larger than {self.max_bytes} bytes")
                        await asyncio.to_thread(out.write, chunk)
                media = answer.headers.get("content-type", "").split(";")[0].strip().lower()
                return media
        except httpx.HTTPError as exc:
            raise CopyFailed(type(exc).__name__) from None

    async def forget(self, task_id: str) -> int:
        """The customer deleted the task: its copies go with it."""
        self._stored.pop(task_id, None)
        return await self.store.delete_prefix(f"{task_id}/")
