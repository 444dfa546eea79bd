"""The store's tests on both backends: `target` is an SQLite file's path or a fresh PostgreSQL
database's URL (tests/postgres.py), one test for each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import fresh_database, pg_url

__all__ = ["pg_url"]


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | Path]:
    if request.param == "sqlite":
        yield tmp_path / "nextapi.sqlite3"
        return
    with fresh_database() as url:
        yield url
