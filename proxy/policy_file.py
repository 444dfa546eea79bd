"""The policy snapshot file: an edge apart keeps its control plane's last snapshot on disk, so an
edge restarted while the control plane is away serves the keys it knew instead of refusing all.

The file, `<data dir>/policy.snapshot`, is

    MAGIC (8 bytes) | key id (8) | HMAC-SHA256 (32) | payload
    payload = msgpack [header, snapshot]
    header  = {"format": 1, "version", "epoch", "control_url", "written_at"}

`snapshot` is the wire snapshot exactly as the control plane sent it (control/store/state.py).
`epoch` is the control plane's database identity (its deployment: versions count within one),
`control_url` where it was reached, `written_at` (unix seconds) when it last answered with this
version.

**Authenticated, not just checksummed.** The MAC covers everything before and after it and is
keyed with HMAC-SHA256(token, LABEL), the token being the one this edge presents to its control
plane (NEXTAPI_ADMIN_TOKEN, or the variable `nextapi_token_env` names). Only a holder of that token
can write a file this edge accepts: a file of another deployment, an altered one and a torn one
are all refused before any of it is parsed. The key id (a MAC of a constant under the same key)
only tells "signed with another token" from "altered" in the log; it reveals nothing the MAC does
not. Rotating the edge's token therefore retires the file: the next snapshot rewrites it. The
deployment is bound through the token because the epoch cannot be checked while the control
plane is away; once it answers, a snapshot of another epoch replaces the restored one anyway.

**Refused, the edge still starts**: one log line says why, and the edge starts without policy,
answering 503 (never 401) until the control plane answers. Refusing to start would trade a clear
503 with Retry-After for refused connections (and a restart loop under --workers), and the file is
only a copy of what the control plane holds: the edge recovers by itself the moment it answers.
The refused file stays in place until the first snapshot overwrites it.

**How stale.** The file is written when the version changes and re-stamped at least hourly while
the control plane answers, so `written_at` is (within an hour) the last time the control plane
vouched for it. A file older than `max_age` (setting `snapshot_max_age_hours`, 24 h) is refused;
an edge serving from one stops deciding once it passes that age (PolicyStore.current). Within it,
whatever changed meanwhile on the control plane (a revoked key) is unknown here until it answers.

**Written atomically**: a temporary file in the same directory (mode 0600: it holds every key's
Argon2id hash and every org's policy), written and fsynced, renamed over the file, then the
directory fsynced; a crash or a full disk leaves the previous file whole. Several processes
sharing one directory (two mitmdumps on one data dir) each rename a whole file of their own, so
the file is always one of theirs, never a mix. The writing runs off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from proxy.policy import PolicyStore, Snapshot

log = logging.getLogger(__name__)

FILE_NAME = "policy.snapshot"
FORMAT = 1
MAGIC = b"NXPOLSN\x00"
LABEL = b"nextapi-edge policy snapshot file v1"
KEY_ID_BYTES, MAC_BYTES = 8, 32
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES + MAC_BYTES
RESTAMP_SECONDS = 3600.0  # at most this long between writes while the control plane answers
FUTURE_SLACK_SECONDS = 300.0  # a file dated further ahead than this: the clock is wrong
STALE_TEMP_SECONDS = 60.0  # a temporary file this old is a crashed writer's


class RefusedFile(Exception):
    """The file exists but is not one this edge may serve from; the message is one clause."""


@dataclass(frozen=True, slots=True)
class Saved:
    snapshot: Snapshot
    wire: dict[str, Any]
    written_at: float
    control_url: str


class SnapshotFile:
    def __init__(
        self,
        path: Path,
        token: str,
        control_url: str,
        *,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not token:
            raise ValueError("a policy snapshot file needs the edge's control-plane token")
        self.path = path
        self.control_url = control_url
        self.max_age = max_age
        self.clock = clock
        self._key = hmac.new(token.encode(), LABEL, hashlib.sha256).digest()
        self._key_id = hmac.new(self._key, b"key id", hashlib.sha256).digest()[:KEY_ID_BYTES]
        self._written: tuple[int, str, float] | None = None  # version, epoch, written_at on disk
        self._failing = False  # the last write failed (logged once until one succeeds)

    # --- reading ----------------------------------------------------------------------------

    def load(self) -> Saved | None:
        """The file's snapshot, or None if there is none; RefusedFile if it may not be used."""
        self._remove_stale_temps()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RefusedFile(f"{self._named} cannot be read ({exc.strerror})") from None
        if len(data) < HEADER_BYTES or not data.startswith(MAGIC):
            raise RefusedFile(f"{self._named} is not a policy snapshot file (truncated or garbled)")
        key_id = data[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES]
        mac = data[len(MAGIC) + KEY_ID_BYTES : HEADER_BYTES]
        if not hmac.compare_digest(key_id, self._key_id):
            raise RefusedFile(
                f"{self._named} was signed with another control-plane token (another deployment's "
                "file, or this edge's token changed)"
            )
        if not hmac.compare_digest(
            mac, self._mac(data[: HEADER_BYTES - MAC_BYTES], data[HEADER_BYTES:])
        ):
            raise RefusedFile(
                f"{self._named} is corrupt or was altered (its authenticator does not match)"
            )
        header, wire = self._parse(data[HEADER_BYTES:])
        age = self.clock() - header["written_at"]
        if age > self.max_age:
            raise RefusedFile(
                f"{self._named} is {_duration(age)} old, older than snapshot_max_age_hours allows "
                f"({_duration(self.max_age)})"
            )
        if age < -FUTURE_SLACK_SECONDS:
            raise RefusedFile(
                f"{self._named} is dated {_duration(-age)} in the future (check the clock)"
            )
        try:
            snapshot = Snapshot.from_wire(wire)
        except (KeyError, TypeError, ValueError) as exc:
            raise RefusedFile(
                f"{self._named} holds a snapshot this edge cannot read ({exc!r})"
            ) from None
        if (snapshot.version, snapshot.epoch) != (header["version"], header["epoch"]):
            raise RefusedFile(f"{self._named} has a header that does not match its snapshot")
        self._written = (snapshot.version, snapshot.epoch, header["written_at"])
        return Saved(snapshot, wire, header["written_at"], header["control_url"])

    def _parse(self, payload: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
        """The header and wire snapshot of an authenticated payload (written by a NextAPI edge:
        what fails here is a format this edge does not know)."""
        try:
            header, wire = msgpack.unpackb(payload)
            known = header["format"] == FORMAT
            header["written_at"] = float(header["written_at"])
            header["version"] = int(header["version"])
            header["epoch"] = str(header["epoch"])
            header["control_url"] = str(header["control_url"])
        except (
            ValueError,
            TypeError,
            KeyError,
            msgpack.ExtraData,
            msgpack.FormatError,
            msgpack.StackError,
        ):
            raise RefusedFile(f"{self._named} is in a format this edge does not know") from None
        if not known or not isinstance(wire, dict):
            raise RefusedFile(
                f"{self._named} is in format {header.get('format')!r} (this edge reads format "
                f"{FORMAT})"
            )
        return header, wire

    # --- writing ----------------------------------------------------------------------------

    def due(self, snapshot: Snapshot, now: float) -> bool:
        """Whether the file should be (re)written for this snapshot, confirmed at `now`."""
        if self._written is None:
            return True
        version, epoch, written_at = self._written
        if (snapshot.version, snapshot.epoch) != (version, epoch):
            return True
        return now - written_at >= min(RESTAMP_SECONDS, self.max_age / 4)

    def write(self, wire: dict[str, Any], written_at: float) -> None:
        """Replace the file atomically with `wire`; on any failure the previous file stays."""
        header = {
            "format": FORMAT,
            "version": int(wire.get("version", 0)),
            "epoch": str(wire.get("epoch", "")),
            "control_url": self.control_url,
            "written_at": written_at,
        }
        payload = msgpack.packb([header, wire])
        signed = MAGIC + self._key_id
        data = signed + self._mac(signed, payload) + payload
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file 0600 whatever the umask; the rename keeps that mode.
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        _fsync_directory(directory)
        self._written = (header["version"], header["epoch"], written_at)

    async def keep(self, wire: dict[str, Any], snapshot: Snapshot, now: float) -> None:
        """Write the file if due, in a worker thread; a failure is logged (once until a write
        succeeds) and never stops the caller: the edge serves from memory either way."""
        if not self.due(snapshot, now):
            return
        try:
            await asyncio.to_thread(self.write, wire, now)
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "%s could not be written (%s): an edge restarted during a control-plane "
                    "outage would start without policy",
                    self._named,
                    exc,
                )
            self._failing = True
            return
        if self._failing:
            log.info("%s is written again", self._named)
        self._failing = False

    # --- helpers ----------------------------------------------------------------------------

    @property
    def _named(self) -> str:
        return f"policy snapshot file {self.path}"

    def _mac(self, signed: bytes, payload: bytes) -> bytes:
        return hmac.new(self._key, signed + payload, hashlib.sha256).digest()

    def _remove_stale_temps(self) -> None:
        """Temporary files of a writer that crashed before its rename (they hold key hashes)."""
        cutoff = self.clock() - STALE_TEMP_SECONDS
        for temp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                if temp.stat().st_mtime < cutoff:
                    temp.unlink()


async def restore(store: PolicyStore, saved_file: SnapshotFile) -> bool:
    """At an edge's start: serve from the file until the control plane answers. One log line
    says what happened; a refused file leaves the store empty (keys then get 503, not 401)."""
    try:
        saved = await asyncio.to_thread(saved_file.load)
    except RefusedFile as refused:
        log.warning(
            "%s: not used; the edge starts without policy and answers 503 until the control "
            "plane answers",
            refused,
        )
        return False
    if saved is None:
        return False
    if not store.restore(saved.snapshot, saved.written_at):
        return False  # the control plane answered first
    log.info(
        "serving policy version %d from %s (confirmed by %s %s ago) until the control plane "
        "answers",
        saved.snapshot.version,
        saved_file.path,
        saved.control_url,
        _duration(saved_file.clock() - saved.written_at),
    )
    return True


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX: the directory entry lives in the directory)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
