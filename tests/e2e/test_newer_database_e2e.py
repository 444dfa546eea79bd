"""A data directory written by a newer release stops the start with one sentence naming the
file, and the file is left as it was (no migration, no write)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from control.store import requestlog
from control.store.rollupfile import rollup_path

ROOT = Path(__file__).resolve().parents[2]


def start(data_dir: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "run_proxy.py", "--data-dir", str(data_dir)]
    command += ["--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0"]
    env = {**os.environ, "NEXTAPI_UPSTREAM_KEY": "k", "NEXTAPI_ADMIN_TOKEN": "nat_newer_test"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def set_version(path: Path, version: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={version}")


@pytest.mark.parametrize("which", ["main", "log", "rollups"])
def test_a_database_of_a_newer_release_stops_the_start_in_one_sentence(
    tmp_path: Path, which: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    paths = {
        "main": data / "nextapi.sqlite3",
        "log": requestlog.log_path(data),
        "rollups": rollup_path(data),
    }
    path = paths[which]
    set_version(path, 999)
    before = path.read_bytes()
    result = start(data)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert f"{path}: " in result.stderr
    assert "written by a newer release" in result.stderr
    assert path.read_bytes() == before
