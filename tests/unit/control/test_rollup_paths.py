"""The rollup file attaches the request log by a file: URI, which needs an absolute path: a
relative data directory (the shipped default is `data`) must still fold."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from control.aggregates import rollup
from control.store import rollupfile
from control.store.state import ControlState


def test_a_relative_data_dir_folds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    async def body() -> int:
        state = await ControlState.open(Path("data"))
        try:
            await state.rollups.fold()
            return await state.rollups.watermark()
        finally:
            await state.close()

    assert asyncio.run(body()) == 0  # folded (nothing yet), without raising
    assert rollupfile.rollup_path(tmp_path / "data").is_file()


def test_rollups_written_by_a_newer_release_are_refused(tmp_path: Path) -> None:
    import sqlite3

    data = tmp_path / "data"

    async def fold() -> None:
        state = await ControlState.open(data)
        try:
            await state.rollups.fold()
        finally:
            await state.close()

    asyncio.run(fold())
    path = rollupfile.rollup_path(data)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={len(rollup.MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="written by a newer release"):
        asyncio.run(fold())
