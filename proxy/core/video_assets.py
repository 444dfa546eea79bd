"""Where the gateway keeps its copies of generated videos and last frames.

Keys look like `<task_id>/video.mp4`: a task's assets share its id as their prefix, so deleting a
task's copies is one prefix. A local directory is the default (one machine); an S3-compatible
bucket (proxy/videos/s3.py) lets several edges and the control plane share one store.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}/[a-z_]{1,32}\.[a-z0-9]{1,8}")


class AssetError(Exception):
    """The store could not be reached or refused the operation."""


@dataclass(frozen=True, slots=True)
class AssetInfo:
    size: int
    content_type: str


def check_key(key: str) -> str:
    """Keys come from task ids the upstream chose: never let one climb out of the store."""
    if not _KEY.fullmatch(key) or ".." in key:
        raise ValueError(f"bad asset key: {key!r}")
    return key


def content_type_of(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class AssetStore(Protocol):
    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        """Store the file's bytes under `key`, atomically: readers see all of it or nothing."""

    async def stat(self, key: str) -> AssetInfo | None:
        """Size and type of a stored asset, or None when there is none."""

    async def read(self, key: str, start: int, end: int) -> bytes:
        """Bytes `start` to `end` inclusive (the caller checked them against the size)."""

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every asset whose key starts with `prefix` (`<task_id>/`); returns how many."""

    async def aclose(self) -> None: ...


class LocalAssetStore:
    """A directory: one subdirectory per task. Writes go to a temporary file first and are
    renamed into place, so a crash never leaves half a video behind a valid link."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put_file(self, key: str, path: Path, content_type: str) -> None:
        await asyncio.to_thread(self._put, self._path(key), path)

    def _put(self, target: Path, source: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    async def stat(self, key: str) -> AssetInfo | None:
        try:
            size = (await asyncio.to_thread(self._path(key).stat)).st_size
        except FileNotFoundError:
            return None
        return AssetInfo(size, content_type_of(key))

    async def read(self, key: str, start: int, end: int) -> bytes:
        return await asyncio.to_thread(self._read, self._path(key), start, end)

    @staticmethod
    def _read(path: Path, start: int, end: int) -> bytes:
        with path.open("rb") as src:
            src.seek(start)
            return src.read(end - start + 1)

    async def delete_prefix(self, prefix: str) -> int:
        return await asyncio.to_thread(self._delete_prefix, prefix)

    def _delete_prefix(self, prefix: str) -> int:
        task_id = prefix.rstrip("/")
        if not task_id or "/" in task_id or task_id.startswith("."):
            raise ValueError(f"bad asset prefix: {prefix!r}")
        folder = self.root / task_id
        deleted = 0
        try:
            entries = list(folder.iterdir())
        except FileNotFoundError:
            return 0
        for entry in entries:
            entry.unlink(missing_ok=True)
            deleted += not entry.name.startswith(".incoming-")
        try:
            folder.rmdir()
        except OSError:
            pass  # a copy arrived meanwhile; the next sweep takes it
        return deleted

    async def aclose(self) -> None:
        return None
