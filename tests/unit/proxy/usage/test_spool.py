"""Usage spool: framing, group commit, flush interval, torn tails, ingestion, restart, kill -9."""

from __future__ import annotations

import asyncio
import collections
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import proxy.usage.spool as spool_mod
from proxy.usage.ingest import SpoolIngestor
from proxy.usage.segment import MAGIC, encode_record, read_segment
from proxy.usage.spool import Spool, SpoolError

ROOT = Path(__file__).resolve().parents[4]


def rec(request_id: str, **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "request_id": request_id,
        "ts": 1_700_000_000.25,
        "org_id": "org_1",
        "key_id": "key_1",
        "method": "POST",
        "route": "/api/v3/contents/generations/tasks",
        "status": 200,
        "latency_ms": 12.345,
        "upstream_latency_ms": None,
        "bytes_in": 1024,
        "bytes_out": 77,
        "credits": 5,
        "model": "seedance-1-0-pro",
        "task_id": None,
        "limited_by": None,
    }
    record.update(extra)
    return record


def read_all(paths: list[Path]) -> list[dict[str, Any]]:
    return [r for p in paths for r in read_segment(p)]


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


async def poll(predicate: Callable[[], bool], deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached before the deadline")
        await asyncio.sleep(0.01)


class ListSink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.fail = False
        self.calls = 0

    async def __call__(self, batch: list[dict[str, Any]]) -> None:
        self.calls += 1
        if self.fail:
            raise ConnectionError("database is down")
        self.records.extend(batch)

    def counts(self) -> collections.Counter[str]:
        return collections.Counter(r["request_id"] for r in self.records)


def run[T](coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_round_trip(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path / "spool")
        await spool.start()
        assert spool.sealed_segments() == []
        spool.append(rec("a"))
        await spool.append_durable(rec("b", status=201, credits=0))
        spool.append(rec("c", model=None, latency_ms=0.5))
        await spool.close()
        await spool.close()  # idempotent
        with pytest.raises(SpoolError):
            spool.append(rec("late"))
        records = read_all(spool.sealed_segments())
        assert records == [
            rec("a"),
            rec("b", status=201, credits=0),
            rec("c", model=None, latency_ms=0.5),
        ]
        assert spool.stats.records_appended == spool.stats.records_written == 3

    run(main())


def test_group_commit_shares_fsyncs(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path, flush_interval=10.0)  # only durable appends wake the writer
        await spool.start()
        before = spool.stats.fsyncs
        await asyncio.gather(*(spool.append_durable(rec(f"r{i}")) for i in range(500)))
        fsyncs = spool.stats.fsyncs - before
        assert spool.stats.records_written == 500
        assert 0 < fsyncs <= 25, fsyncs
        records = read_all([spool.current_segment])  # type: ignore[list-item]
        assert [r["request_id"] for r in records] == [f"r{i}" for i in range(500)]
        await spool.close()

    run(main())


def test_durable_covers_earlier_plain_appends(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path, flush_interval=10.0)
        await spool.start()
        for i in range(50):
            spool.append(rec(f"p{i}"))
        await spool.append_durable(rec("d"))
        assert len(list(read_segment(spool.current_segment))) == 51  # type: ignore[arg-type]
        await spool.close()

    run(main())


def test_plain_append_reaches_disk_within_flush_interval(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path, flush_interval=0.05)
        await spool.start()
        current = spool.current_segment
        assert current is not None
        for i in range(10):
            spool.append(rec(f"p{i}"))
        start = time.monotonic()
        # The file shows the records once written; the writer thread counts them after the
        # fsync that follows, so wait for both rather than racing it.
        await poll(
            lambda: len(list(read_segment(current))) == 10 and spool.stats.records_written == 10
        )
        assert time.monotonic() - start < 2.0
        await poll(lambda: spool.stats.fsyncs >= 3)  # segment file + directory, then the batch
        await spool.close()

    run(main())


def test_torn_and_corrupt_tails(tmp_path: Path) -> None:
    async def main() -> Path:
        spool = Spool(tmp_path / "spool")
        await spool.start()
        for i in range(20):
            spool.append(rec(f"r{i}"))
        await spool.close()
        (path,) = spool.sealed_segments()
        return path

    path = run(main())
    data = path.read_bytes()
    last_frame = len(encode_record(rec("r19")))
    assert len(data) == len(MAGIC) + sum(len(encode_record(rec(f"r{i}"))) for i in range(20))

    def variant(content: bytes) -> list[str]:
        target = tmp_path / "variant.seg"
        target.write_bytes(content)
        return [r["request_id"] for r in read_segment(target)]

    intact = [f"r{i}" for i in range(20)]
    for cut in (1, 3, 7, 8, 9, last_frame - 1):  # torn last write, inside header or payload
        assert variant(data[:-cut]) == intact[:19], cut
    assert variant(data + b"\x00" * 64) == intact  # zero-filled tail (length 0)
    assert variant(data + os.urandom(5)) == intact
    assert variant(data + b"\xff\xff\xff\x7f" + b"junk" * 10) == intact  # absurd length
    flipped = bytearray(data)
    flipped[-3] ^= 0x40  # a bit flip in the last payload: crc mismatch
    assert variant(bytes(flipped)) == intact[:19]
    assert variant(data[: len(MAGIC)]) == []
    assert variant(data[:5]) == []  # torn magic
    assert variant(b"") == []


def test_size_rotation_and_name_order(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path, flush_interval=10.0, segment_max_bytes=2000)
        await spool.start()
        for i in range(100):
            await spool.append_durable(rec(f"r{i}"))
        sealed = spool.sealed_segments()
        assert len(sealed) >= 5
        assert sealed == sorted(sealed)
        assert spool.current_segment is not None and spool.current_segment.name > sealed[-1].name
        await spool.close()
        ids = [r["request_id"] for r in read_all(spool.sealed_segments())]
        assert ids == [f"r{i}" for i in range(100)]
        assert segment_files(tmp_path) == spool.sealed_segments()

    run(main())


def test_rotate_empty_is_noop_and_empty_segment_removed_on_close(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path)
        await spool.start()
        assert await spool.rotate() is None
        spool.append(rec("x"))
        sealed = await spool.rotate()
        assert sealed is not None and spool.sealed_segments() == [sealed]
        assert not spool.has_unsealed_records
        await spool.close()
        assert segment_files(tmp_path) == [sealed]  # the empty last segment was removed

    run(main())


def test_directory_is_locked(tmp_path: Path) -> None:
    async def main() -> None:
        first = Spool(tmp_path)
        await first.start()
        with pytest.raises(SpoolError):
            await Spool(tmp_path).start()
        await first.close()
        second = Spool(tmp_path)
        await second.start()
        await second.close()

    run(main())


def test_failed_fsync_fails_durable_then_rewrites_in_new_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = spool_mod._datasync
    failures = [OSError(5, "Input/output error")]

    def flaky(fd: int) -> None:
        if failures and os.fstat(fd).st_size > len(MAGIC):  # a data batch, not a new segment
            raise failures.pop()
        real(fd)

    monkeypatch.setattr(spool_mod, "_datasync", flaky)

    async def main() -> None:
        spool = Spool(tmp_path, flush_interval=0.02)
        await spool.start()
        first = spool.current_segment
        with pytest.raises(SpoolError):
            await spool.append_durable(rec("d1"))
        assert spool.sealed_segments() == [first]
        await spool.append_durable(rec("d2"))  # retried in a fresh segment with d1
        await spool.close()
        ids = collections.Counter(r["request_id"] for r in read_all(spool.sealed_segments()))
        assert set(ids) == {"d1", "d2"} and spool.stats.write_errors == 1

    run(main())


def test_ingestor_moves_records_and_deletes_segments(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path, flush_interval=0.02)
        await spool.start()
        sink = ListSink()
        ingestor = SpoolIngestor(spool, sink, interval=0.02, batch_size=64)
        await ingestor.start()
        for i in range(300):
            spool.append(rec(f"r{i}"))
        await poll(lambda: len(sink.records) == 300)  # background ticks, no drain
        await poll(lambda: spool.sealed_segments() == [])
        for i in range(300, 350):
            await spool.append_durable(rec(f"r{i}"))
        await ingestor.stop()
        assert sink.counts() == collections.Counter(f"r{i}" for i in range(350))
        assert segment_files(tmp_path) == [spool.current_segment]
        await spool.close()
        assert segment_files(tmp_path) == []

    run(main())


def test_failing_sink_keeps_segments_then_delivers_exactly_once(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path)
        await spool.start()
        sink = ListSink()
        ingestor = SpoolIngestor(spool, sink, interval=3600, batch_size=50)
        await ingestor.start()
        for i in range(120):
            spool.append(rec(f"a{i}"))
        sink.fail = True
        assert await ingestor.drain() is False
        for i in range(80):
            spool.append(rec(f"b{i}"))
        assert await ingestor.drain() is False
        kept = spool.sealed_segments()
        assert len(kept) == 2 and all(p.exists() for p in kept)
        assert sink.records == []

        # Fail halfway through the first segment: the accepted batch is not resent.
        calls = sink.calls
        real_call = ListSink.__call__

        async def second_batch_fails(batch: list[dict[str, Any]]) -> None:
            sink.fail = sink.calls == calls + 1
            await real_call(sink, batch)

        ingestor.sink = second_batch_fails
        assert await ingestor.drain() is False
        assert len(sink.records) == 50
        sink.fail = False
        ingestor.sink = sink
        assert await ingestor.drain() is True
        counts = sink.counts()
        assert len(counts) == 200 and set(counts.values()) == {1}
        assert spool.sealed_segments() == [] and not any(p.exists() for p in kept)
        await ingestor.stop()
        await spool.close()

    run(main())


def test_restart_replays_old_segments(tmp_path: Path) -> None:
    async def main() -> None:
        first = Spool(tmp_path)
        await first.start()
        for i in range(100):
            first.append(rec(f"r{i}"))
        await first.rotate()
        for i in range(100, 150):
            await first.append_durable(rec(f"r{i}"))
        await first.close()
        old = segment_files(tmp_path)
        assert len(old) == 2

        second = Spool(tmp_path)
        await second.start()
        assert second.sealed_segments() == old
        assert second.current_segment not in old
        assert second.current_segment is not None and second.current_segment.name > old[-1].name
        sink = ListSink()
        ingestor = SpoolIngestor(second, sink, interval=3600)
        await ingestor.start()  # replays before returning
        assert sink.counts() == collections.Counter(f"r{i}" for i in range(150))
        assert not any(p.exists() for p in old)
        await ingestor.stop()
        await second.close()

    run(main())


def test_crash_between_sink_and_delete_replays(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path)
        await spool.start()
        sink = ListSink()
        ingestor = SpoolIngestor(spool, sink, interval=3600)
        await ingestor.start()

        async def delete_fails(path: Path) -> None:
            raise PermissionError(13, "Permission denied")

        spool.delete_segment = delete_fails  # type: ignore[method-assign]
        for i in range(40):
            spool.append(rec(f"r{i}"))
        assert await ingestor.drain() is False
        assert await ingestor.drain() is False  # no resend within this process
        assert len(sink.records) == 40
        await spool.close()  # "crash": the segment was delivered but never deleted

        again = Spool(tmp_path)
        await again.start()
        replay = SpoolIngestor(again, sink, interval=3600)
        await replay.start()
        await replay.stop()
        await again.close()
        counts = sink.counts()
        assert set(counts) == {f"r{i}" for i in range(40)} and set(counts.values()) == {2}
        assert segment_files(tmp_path) == []

    run(main())


def _read_lines(stream: Any, out: queue.Queue[str | None]) -> None:
    for line in stream:
        out.put(line.rstrip("\n"))
    out.put(None)


@pytest.mark.parametrize("durable_limit", [0, 1000], ids=["kill-mid-durable", "kill-plain-only"])
def test_kill_9_loses_no_acknowledged_durable_record(tmp_path: Path, durable_limit: int) -> None:
    """kill -9 a writer: every acknowledged durable record survives; plain ones may be lost only
    within the flush interval (with durable_limit the durable writers stop first, so the kill
    lands while only plain appends are buffered)."""
    directory = tmp_path / "spool"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [
        sys.executable,
        "-m",
        "tests.unit.proxy.usage.spool_writer_child",
        str(directory),
        "16",
    ]
    child = subprocess.Popen(
        [*command, str(durable_limit)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(child.stdout, lines), daemon=True)
    reader.start()
    durable: set[str] = set()
    plain: set[str] = set()
    plain_after_durable: list[str] = []

    def classify(line: str) -> None:
        kind, _, request_id = line.partition(" ")
        if kind == "D":
            durable.add(request_id)
        elif kind == "N":
            plain.add(request_id)
            if durable_limit and len(durable) >= durable_limit:
                plain_after_durable.append(request_id)

    def enough() -> bool:
        if durable_limit:
            return len(plain_after_durable) >= 1500
        return len(durable) >= 2000

    deadline = time.monotonic() + 10.0
    try:
        while not enough():
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, "child exited early"
            classify(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=5)
    while (line := lines.get(timeout=5)) is not None:  # acks already in the pipe count too
        classify(line)
    reader.join(timeout=5)
    assert child.returncode == -signal.SIGKILL

    async def replay() -> collections.Counter[str]:
        spool = Spool(directory)
        await spool.start()
        sink = ListSink()
        ingestor = SpoolIngestor(spool, sink)
        await ingestor.start()
        await ingestor.stop()
        await spool.close()
        return sink.counts()

    counts = run(replay())
    missing = durable - set(counts)
    assert not missing, f"{len(missing)} acknowledged durable records lost"
    assert max(counts.values()) == 1
    lost_plain = len(plain - set(counts))
    print(
        f"\nkill -9 ({durable_limit=}): {len(durable)} durable acknowledged, all replayed; "
        f"plain: {len(plain)} appended, {lost_plain} lost; "
        f"{sum(counts.values())} records on disk in total"
    )
    assert segment_files(directory) == []
    shutil.rmtree(directory)


def test_a_sink_outage_is_logged_once_then_every_30_s_and_its_end_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]

    async def main() -> None:
        spool = Spool(tmp_path)
        await spool.start()
        sink = ListSink()
        ingestor = SpoolIngestor(spool, sink, interval=3600)
        ingestor.clock = lambda: now[0]
        await ingestor.start()
        spool.append(rec("a"))
        sink.fail = True
        for _ in range(200):  # 50 s of ticks 0.25 s apart
            assert await ingestor.drain() is False
            now[0] += 0.25
        sink.fail = False
        assert await ingestor.drain() is True
        await ingestor.stop()
        await spool.close()

    with caplog.at_level("WARNING", logger="proxy.usage.ingest"):
        run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "proxy.usage.ingest"]
    assert len(lines) == 3, lines  # at 0 s, at 30 s, and the end
    assert "1 failures in 0 s" in lines[0] and "121 failures in 30 s" in lines[1]
    assert lines[2] == "usage spool: sink back after 200 failures in 50 s"
