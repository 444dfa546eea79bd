"""A control plane in-process for unit tests: a real SQLite file under `tmp_path`, the Starlette
app driven through httpx's ASGI transport, and a runner for async test bodies (no pytest-asyncio).

    def test_something(control_plane: ControlRunner) -> None:
        async def body(ctl: Control) -> None:
            org = await ctl.create_org()
            ...
        control_plane(body)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import EllipsisType
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

import control.app
from control.store.state import ControlState
from tests import postgres

ADMIN_TOKEN = "nat_unit-admin-token-7Qm2xR9vLk4pZ8wN"
DB_NAME = "nextapi.sqlite3"
LOG_DB_NAME = "usage_log.sqlite3"  # the request log's file (control/store/requestlog.py)


class Control:
    """One running control plane: its state, an HTTP client on its app, the admin token."""

    def __init__(self, data_dir: Path, token: str, database_url: str | None = None) -> None:
        self.data_dir = data_dir
        self.token = token
        self.database_url = database_url  # None: the SQLite file in data_dir
        self.state: ControlState | None = None
        self.client: httpx.AsyncClient | None = None
        self.app: Starlette | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)  # as a start makes it (launch/runtime.py)
        self.state = await ControlState.open(self.data_dir, database_url=self.database_url)
        await self.state.admin.bootstrap(self.token)
        app = self.app = control.app.create_app(self.state)
        # App exceptions become 500 answers (as under a real server), so a bug shows as a
        # failed status assertion rather than an exception out of the client.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://control")

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        if self.state is not None:
            await self.state.close()
            self.state = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    @property
    def st(self) -> ControlState:
        assert self.state is not None
        return self.state

    @property
    def snapshot(self) -> dict[str, Any]:
        return self.st.snapshot

    @property
    def version(self) -> int:
        return int(self.st.snapshot["version"])

    # --- HTTP ------------------------------------------------------------------------------

    def headers(self, token: str | None) -> dict[str, str]:
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    async def request(
        self, method: str, path: str, *, token: str | EllipsisType | None = ..., **kwargs: Any
    ) -> httpx.Response:
        """`token=...` (the default) sends the admin token; `token=None` sends none."""
        assert self.client is not None
        chosen = self.token if isinstance(token, EllipsisType) else token
        headers = self.headers(chosen) | kwargs.pop("headers", {})
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, **kwargs)

    # --- shortcuts -------------------------------------------------------------------------

    async def create_org(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Acme", "email": "ops@acme.example"} | fields
        response = await self.post("/v1/orgs", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def create_key(self, org_id: str, **fields: Any) -> dict[str, Any]:
        body = {"name": "ci"} | fields
        response = await self.post(f"/v1/orgs/{org_id}/keys", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def create_admin_token(self, scopes: list[str]) -> dict[str, Any]:
        response = await self.post("/v1/admin/tokens", json={"name": "t", "scopes": scopes})
        assert response.status_code == 201, response.text
        return response.json()

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in await self.st.db.fetch_all(sql, *args)]

    async def log_rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Rows of the request log (usage, security_events): its own file on SQLite."""
        return [dict(row) for row in await self.st.log.fetch_all(sql, *args)]

    async def table_names(self) -> list[str]:
        """The database's tables of data, by name (on PostgreSQL not `schema_version`, the
        migrations' record, as SQLite's is a pragma)."""
        if self.database_url is not None:
            sql = (
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
                "AND table_name != 'schema_version' ORDER BY table_name"
            )
        else:
            sql = "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
        return [row[0] for row in await self.st.db.fetch_all(sql)]

    async def stored_bytes(self) -> bytes:
        """Everything the control plane's database holds: on SQLite every byte on disk (the
        files, the main one and the request log's, their WALs and SHMs), on PostgreSQL every
        row of every table, as text."""
        if self.database_url is not None:
            data = []
            for table in await self.table_names():
                for row in await self.st.db.fetch_all(f'SELECT t::text FROM "{table}" t'):
                    data.append(row[0])
            return "\n".join(data).encode()
        data = b""
        for name in (DB_NAME, LOG_DB_NAME):
            for suffix in ("", "-wal", "-shm", "-journal"):
                path = self.data_dir / (name + suffix)
                if path.exists():
                    data += path.read_bytes()
        return data


type ControlBody = Callable[[Control], Awaitable[None]]
type ControlRunner = Callable[[ControlBody], None]


async def _run(
    data_dir: Path, token: str, body: ControlBody, database_url: str | None = None
) -> None:
    ctl = Control(data_dir, token, database_url)
    try:
        await ctl.start()
        await asyncio.wait_for(body(ctl), timeout=20)
    finally:
        await ctl.stop()


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test of a control plane (one asking for `control_plane`, or for `backend` to open
    a state itself) runs on both backends (`[sqlite]`, `[postgresql]`), but for one marked
    `@pytest.mark.backends("sqlite")` with why: what it checks exists on one only."""
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    backends = marker.args if marker is not None else BACKENDS
    metafunc.parametrize("backend", backends)


@pytest.fixture
def control_plane(tmp_path: Path, backend: str) -> Iterator[ControlRunner]:
    """Run an async test body against a fresh control plane (its data under tmp_path; its
    database the SQLite file there, or a fresh PostgreSQL database: tests/postgres.py)."""
    with contextlib.ExitStack() as stack:
        database_url = (
            stack.enter_context(postgres.fresh_database()) if backend == "postgresql" else None
        )

        def run(body: ControlBody) -> None:
            asyncio.run(_run(tmp_path / "data", ADMIN_TOKEN, body, database_url))

        yield run


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    """The control plane's error envelope: `{"error": {"code", "message"}}` with `status`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"].get("code"), str) and body["error"]["code"], body
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
