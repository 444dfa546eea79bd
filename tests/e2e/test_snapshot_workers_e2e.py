"""`--workers 2`: each worker keeps its own policy snapshot file in its own directory
(`<data_dir>/workers/<n>/policy.snapshot`), and a worker started again after a crash begins
from it (then takes the control plane's answer)."""

from __future__ import annotations

import os
import re
import secrets
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from proxy.core import keys
from proxy.policy_file import FILE_NAME, SnapshotFile
from tests.e2e.harness import Gateway, Simulator
from tests.e2e.test_shared_e2e import wait_for_key
from tests.e2e.test_workers_e2e import REDIS, start_workers, worker_pid


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"nextapi-test-{secrets.token_hex(4)}:"
    yield value
    client = redis.Redis.from_url(REDIS)
    for name in client.scan_iter(match=f"{value}*"):
        client.delete(name)
    client.close()


def saved_keys(gw: Gateway, number: int) -> set[str]:
    path = gw.data_dir / "workers" / str(number) / FILE_NAME
    saved = SnapshotFile(path, gw.admin_token, gw.control_url, max_age=86400).load()
    return set() if saved is None else set(saved.snapshot.keys)


def test_each_worker_keeps_its_own_file_and_restarts_from_it(
    simulator: Simulator, tmp_path: Path, prefix: str
) -> None:
    gw = start_workers(simulator, tmp_path / "gateway", prefix)
    try:
        org = gw.create_org()
        key = gw.create_key(org["id"])["key"]
        key_id = keys.parse_key(key).key_id  # type: ignore[union-attr]
        wait_for_key(gw.edge_url, key)
        deadline = time.monotonic() + 10
        while not all(key_id in saved_keys(gw, n) for n in (1, 2)):
            assert time.monotonic() < deadline, "the key not in both workers' files"
            time.sleep(0.05)
        for n in (1, 2):
            mode = (gw.data_dir / "workers" / str(n) / FILE_NAME).stat().st_mode
            assert stat.S_IMODE(mode) == 0o600

        first = worker_pid(gw, 2)
        os.kill(first, signal.SIGKILL)
        worker_pid(gw, 2, not_pid=first)  # started again by the supervisor
        own_file = re.escape(str(gw.data_dir / "workers" / "2" / FILE_NAME))
        # (a worker's log lines reach stderr as they are, without the `worker <n>:` mark)
        gw.process.wait_for(rf"serving policy version \d+ from {own_file}")
        wait_for_key(gw.edge_url, key)
    finally:
        gw.stop()
