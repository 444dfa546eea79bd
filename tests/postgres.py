"""A PostgreSQL database of its own for a test: created with a random name on the server at
NEXTAPI_TEST_DATABASE_URL (default: this machine's, postgresql://postgres@127.0.0.1:5432) and
dropped at the end. An unreachable server fails the test with a sentence, never skips it: the
PostgreSQL backend is then untested, which must show.

Every control-plane test (tests/unit/conftest.py's `control_plane`) runs on it as well as on an
SQLite file; `-k sqlite` or `-k postgresql` runs one backend's."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest

from control.store.postgres import redact

SERVER_ENV = "NEXTAPI_TEST_DATABASE_URL"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"


def server_url() -> str:
    """The server's URL, without a database name."""
    return os.environ.get(SERVER_ENV, "").rstrip("/") or DEFAULT_SERVER


def _admin_connection(server: str) -> psycopg.Connection:
    try:
        return psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as failed:
        pytest.fail(
            f"PostgreSQL at {redact(server)} is unreachable ({failed}): the PostgreSQL tests need "
            f"it. Start it (`pg_ctlcluster --skip-systemctl-redirect 15 main start`) or point "
            f"{SERVER_ENV} at one.",
            pytrace=False,
        )


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database, dropped (with whatever still holds it) afterwards."""
    server = server_url()
    name = f"nextapi_test_{secrets.token_hex(6)}"
    with _admin_connection(server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with _admin_connection(server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_exists(url: str) -> bool:
    server, _, name = url.rpartition("/")
    with _admin_connection(server) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return found is not None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database's URL, for one test."""
    with fresh_database() as url:
        yield url
