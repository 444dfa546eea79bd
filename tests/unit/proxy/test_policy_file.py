"""The policy snapshot file (proxy/policy_file.py): what it accepts, what it refuses, and how it
is written."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from proxy import policy_file
from proxy.policy import Snapshot
from proxy.policy_file import (
    FILE_NAME,
    HEADER_BYTES,
    MAGIC,
    RefusedFile,
    SnapshotFile,
)

TOKEN = "nat_unit-edge-token-4hQ8zW2mN7pX"
CONTROL = "http://127.0.0.1:9090"
HOUR = 3600.0
T0 = 1_750_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def wire(version: int = 7, epoch: str = "e1") -> dict[str, Any]:
    return {
        "version": version,
        "epoch": epoch,
        "orgs": [{"id": "org_1", "status": "active", "allowed_ips": ["10.0.0.0/8"]}],
        "keys": [
            {
                "id": "KEY1",
                "org_id": "org_1",
                "status": "active",
                "secret_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                "models": ["seedance-1-0-pro"],
            }
        ],
        "catalog": {},
    }


def snapshot_file(
    tmp_path: Path, token: str = TOKEN, clock: Clock | None = None, max_age: float = 24 * HOUR
) -> SnapshotFile:
    return SnapshotFile(
        tmp_path / FILE_NAME, token, CONTROL, max_age=max_age, clock=clock or Clock()
    )


def temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name != FILE_NAME]


def test_round_trip_gives_back_the_snapshot_and_its_header(tmp_path: Path) -> None:
    written = snapshot_file(tmp_path)
    written.write(wire(), T0 - 60)
    saved = snapshot_file(tmp_path).load()
    assert saved is not None
    assert saved.snapshot == Snapshot.from_wire(wire())
    assert saved.wire == wire()
    assert (saved.written_at, saved.control_url) == (T0 - 60, CONTROL)
    assert saved.snapshot.keys["KEY1"].models == frozenset({"seedance-1-0-pro"})


def test_no_file_is_no_snapshot(tmp_path: Path) -> None:
    assert snapshot_file(tmp_path).load() is None


@pytest.mark.parametrize(
    ("where", "says"),
    [
        (0, "is not a policy snapshot file"),  # the magic
        (len(MAGIC) + 2, "signed with another control-plane token"),  # the key id
        (HEADER_BYTES - 1, "corrupt or was altered"),  # the MAC
        (HEADER_BYTES + 3, "corrupt or was altered"),  # the header
        (-5, "corrupt or was altered"),  # the snapshot itself
    ],
)
def test_a_flipped_byte_is_refused(tmp_path: Path, where: int, says: str) -> None:
    snapshot_file(tmp_path).write(wire(), T0)
    path = tmp_path / FILE_NAME
    data = bytearray(path.read_bytes())
    data[where] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(RefusedFile, match=says):
        snapshot_file(tmp_path).load()


def test_a_file_signed_with_another_token_is_refused_as_foreign(tmp_path: Path) -> None:
    snapshot_file(tmp_path, token="nat_other-deployment-token-xyz").write(wire(), T0)
    with pytest.raises(RefusedFile, match="signed with another control-plane token"):
        snapshot_file(tmp_path).load()


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    snapshot_file(tmp_path).write(wire(), T0)
    path = tmp_path / FILE_NAME
    whole = path.read_bytes()
    for length in (0, 5, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 1, len(whole) - 1):
        path.write_bytes(whole[:length])
        with pytest.raises(RefusedFile):
            snapshot_file(tmp_path).load()


def test_a_file_older_than_the_max_age_is_refused(tmp_path: Path) -> None:
    clock = Clock()
    snapshot_file(tmp_path).write(wire(), T0)
    clock.now = T0 + 24 * HOUR - 1
    assert snapshot_file(tmp_path, clock=clock).load() is not None
    clock.now = T0 + 24 * HOUR + 1
    with pytest.raises(RefusedFile, match="older than snapshot_max_age_hours allows"):
        snapshot_file(tmp_path, clock=clock).load()


def test_a_file_dated_in_the_future_is_refused(tmp_path: Path) -> None:
    snapshot_file(tmp_path).write(wire(), T0 + HOUR)
    with pytest.raises(RefusedFile, match="in the future"):
        snapshot_file(tmp_path).load()


def test_the_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(b"an operator's copy, world-readable")
    path.chmod(0o644)
    previous = os.umask(0)
    try:
        snapshot_file(tmp_path).write(wire(), T0)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert snapshot_file(tmp_path).load() is not None


class FailingHalfway:
    """A file object that writes half of what it is given, then fails as a full disk does."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __enter__(self) -> FailingHalfway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.close()

    def write(self, data: bytes) -> int:
        self.real.write(data[: len(data) // 2])
        self.real.flush()
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_write_failing_midway_leaves_the_previous_file_whole_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot_file(tmp_path).write(wire(version=7), T0)
    real_fdopen = os.fdopen
    monkeypatch.setattr(
        policy_file.os, "fdopen", lambda fd, mode: FailingHalfway(real_fdopen(fd, mode))
    )
    with pytest.raises(OSError, match="No space left"):
        snapshot_file(tmp_path).write(wire(version=8), T0)
    monkeypatch.undo()
    saved = snapshot_file(tmp_path).load()
    assert saved is not None and saved.snapshot.version == 7
    assert temp_files(tmp_path) == []


def test_a_failing_fsync_leaves_the_previous_file_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot_file(tmp_path).write(wire(version=7), T0)

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(policy_file.os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        snapshot_file(tmp_path).write(wire(version=8), T0)
    monkeypatch.undo()
    saved = snapshot_file(tmp_path).load()
    assert saved is not None and saved.snapshot.version == 7
    assert temp_files(tmp_path) == []


def test_keep_logs_a_failing_write_once_and_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    kept = snapshot_file(tmp_path)

    def fail(*args: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(kept, "write", fail)
    with caplog.at_level(logging.WARNING, logger="proxy.policy_file"):
        for version in (1, 2, 3):
            asyncio.run(kept.keep(wire(version), Snapshot.from_wire(wire(version)), T0))
    assert len([r for r in caplog.records if "could not be written" in r.message]) == 1


def test_written_when_the_version_changes_and_restamped_hourly(tmp_path: Path) -> None:
    kept = snapshot_file(tmp_path)
    seven = Snapshot.from_wire(wire(7))
    assert kept.due(seven, T0)
    kept.write(wire(7), T0)
    assert not kept.due(seven, T0 + 60)
    assert kept.due(Snapshot.from_wire(wire(8)), T0 + 60)
    assert kept.due(Snapshot.from_wire(wire(7, epoch="e2")), T0 + 60)
    assert kept.due(seven, T0 + HOUR)
    # A short max age restamps more often: four times within it.
    short = snapshot_file(tmp_path, max_age=HOUR)
    short.write(wire(7), T0)
    assert not short.due(seven, T0 + HOUR / 4 - 1) and short.due(seven, T0 + HOUR / 4)


def test_a_crashed_writers_temporary_file_is_removed_at_load(tmp_path: Path) -> None:
    snapshot_file(tmp_path).write(wire(), T0)
    crashed = tmp_path / f".{FILE_NAME}.abc123.tmp"
    crashed.write_bytes(b"half a snapshot")
    os.utime(crashed, (T0 - 3600, T0 - 3600))
    in_progress = tmp_path / f".{FILE_NAME}.def456.tmp"  # another process writing right now
    in_progress.write_bytes(b"being written")
    os.utime(in_progress, (T0, T0))
    assert snapshot_file(tmp_path).load() is not None
    assert not crashed.exists() and in_progress.exists()


def test_an_empty_token_signs_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        snapshot_file(tmp_path, token="")
