"""The webhook delivery worker against a real receiver on loopback, verified with the reference
Standard Webhooks verifier (`standardwebhooks`). The clock is injected (it starts at the real
time, so that the verifier's five-minute tolerance holds) and moved by hand."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from control.jobs.delivery import SCHEDULE, Deliverer, retry_after
from control.jobs.webhook_addresses import address_allowed
from control.store.state import ControlState
from launch.serving import AppServer, serve
from proxy.core import webhook_signatures as signing
from tests import postgres

ORG = "org_test"
DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records each request; answers from `script` ((status, headers) in turn), then 200."""

    requests: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0
    active: int = 0
    max_active: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            body = await request.body()
            self.requests.append(Received(request.url.path, dict(request.headers), body))
            self.arrived.set()
            if self.delay:
                await asyncio.sleep(self.delay)
            status, headers = self.script.pop(0) if self.script else (200, {})
            return Response(b"ok", status_code=status, headers=headers)
        finally:
            self.active -= 1

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])


class Env:
    def __init__(self, state: ControlState, receiver: Receiver, server: AppServer) -> None:
        self.state = state
        self.receiver = receiver
        self.url = f"http://127.0.0.1:{server.port}/hook"
        self.clock = Clock()
        self._n = 0

    def deliverer(self, **kwargs: Any) -> Deliverer:
        options: dict[str, Any] = {"clock": self.clock, "allow_private": True} | kwargs
        return Deliverer(self.state, **options)

    async def hook(self, url: str | None = None, **columns: Any) -> tuple[str, str]:
        self._n += 1
        webhook_id, secret = f"wh_{self._n}", signing.new_secret()
        values = {"id": webhook_id, "org_id": ORG, "url": url or f"{self.url}/{self._n}"}
        values |= {"secret": secret, "created_at": self.clock(), "updated_at": self.clock()}
        values |= columns
        await self.insert("webhooks", values)
        return webhook_id, values["secret"]

    async def event(self, webhook_id: str, task: str = "task_1", status: str = "pending") -> str:
        self._n += 1
        event_id = f"msg_{self._n}"
        payload = json.dumps({"id": task, "status": "succeeded", "n": self._n}).encode()
        now = self.clock()
        values = {"id": event_id, "webhook_id": webhook_id, "org_id": ORG, "type": "task.succeeded"}
        values |= {"task_id": f"{task}_{self._n}", "payload": payload, "status": status}
        values |= {"next_attempt_at": now, "created_at": now, "updated_at": now}
        await self.insert("webhook_events", values)
        return event_id

    async def insert(self, table: str, values: dict[str, Any]) -> None:
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        async with self.state.transaction() as tx:
            await tx.execute(
                f"INSERT INTO {table} ({names}) VALUES ({marks})", tuple(values.values())
            )

    async def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in await self.state.db.fetch_all(sql, *args)]

    async def event_row(self, event_id: str) -> dict[str, Any]:
        return (await self.rows("SELECT * FROM webhook_events WHERE id=?", event_id))[0]

    async def hook_row(self, webhook_id: str) -> dict[str, Any]:
        return (await self.rows("SELECT * FROM webhooks WHERE id=?", webhook_id))[0]

    async def attempts(self, event_id: str) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT * FROM webhook_attempts WHERE event_id=? ORDER BY id", event_id
        )

    async def audits(self, webhook_id: str) -> list[dict[str, Any]]:
        return await self.rows("SELECT * FROM audit WHERE target=? ORDER BY id", webhook_id)


Scenario = Callable[[Env], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, backend: str = "sqlite") -> None:
    """`scenario` against a fresh control plane's state: its database the SQLite file under
    tmp_path, or a fresh PostgreSQL database (tests/postgres.py)."""

    async def main(database_url: str | None) -> None:
        state = await ControlState.open(tmp_path / "data", database_url=database_url)
        receiver = Receiver()
        server = await serve(receiver.app())
        try:
            env = Env(state, receiver, server)
            now = env.clock()
            await env.insert(
                "orgs",
                {"id": ORG, "name": "Acme", "email": "ops@acme.example", "created_at": now,
                 "updated_at": now},
            )  # fmt: skip
            await asyncio.wait_for(scenario(env), timeout=10)
        finally:
            await server.stop()
            await state.close()

    if backend == "postgresql":
        with postgres.fresh_database() as database_url:
            asyncio.run(main(database_url))
    else:
        asyncio.run(main(None))


def verify(secret: str, received: Received) -> Any:
    return Webhook(secret).verify(received.body, received.headers)


def signatures(received: Received) -> list[str]:
    return received.headers["webhook-signature"].split(" ")


# ====================================================================================== signing


def test_secret_and_signature_follow_the_standard() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert signing.new_secret() != secret
    body, now = b'{"id":"task_1"}', int(time.time())
    header = signing.signature_header([secret], "msg_1", now, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": header}
    assert Webhook(secret).verify(body, headers) == {"id": "task_1"}
    assert header == Webhook(secret).sign(
        "msg_1", datetime.fromtimestamp(now, tz=UTC), body.decode()
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"id":"task_2"}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    other = signing.new_secret()
    both = signing.signature_header([secret, other], "msg_1", now, body).split(" ")
    assert len(both) == 2 and all(s.startswith("v1,") for s in both)
    assert both[0] == header


# ===================================================================================== delivery


def test_delivers_signed_event(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, secret = await env.hook()
        event_id = await env.event(webhook_id)
        deliverer = env.deliverer()
        assert await deliverer.run_once() == 1
        (received,) = env.receiver.requests
        assert verify(secret, received)["id"] == "task_1"
        assert received.headers["webhook-id"] == event_id
        assert received.headers["webhook-timestamp"] == str(int(env.clock()))
        assert received.headers["content-type"] == "application/json"
        assert received.headers["user-agent"] == "NextAPI-Webhooks/1"
        assert received.body == (await env.event_row(event_id))["payload"]
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(received.body.replace(b"task_1", b"task_9"), received.headers)
        event = await env.event_row(event_id)
        assert event["status"] == "delivered" and event["attempts"] == 0
        (attempt,) = await env.attempts(event_id)
        assert attempt["status"] == 200 and attempt["error"] is None
        assert attempt["latency_ms"] >= 0 and attempt["attempted_at"] == env.clock()
        assert await deliverer.run_once() == 0  # nothing more is due
        assert len(env.receiver.requests) == 1

    run(tmp_path, scenario, backend)


def test_retry_after_500_keeps_the_id_and_signs_anew(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, secret = await env.hook()
        event_id = await env.event(webhook_id)
        env.receiver.script = [(500, {})]
        deliverer = env.deliverer()
        assert await deliverer.run_once() == 1
        event = await env.event_row(event_id)
        assert event["status"] == "pending" and event["attempts"] == 1
        assert 5 * 0.9 <= event["next_attempt_at"] - env.clock() <= 5 * 1.1
        assert (await env.hook_row(webhook_id))["failing_since"] == env.clock()
        assert await deliverer.run_once() == 0  # not due yet
        env.clock.advance(6)
        assert await deliverer.run_once() == 1
        first, second = env.receiver.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
        assert (
            int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 6
        )
        assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
        assert verify(secret, first) == verify(secret, second)
        assert (await env.event_row(event_id))["status"] == "delivered"
        assert (await env.hook_row(webhook_id))["failing_since"] is None
        assert [a["status"] for a in await env.attempts(event_id)] == [500, 200]

    run(tmp_path, scenario, backend)


def test_schedule_then_failed_after_eight_attempts(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook()
        event_id = await env.event(webhook_id)
        env.receiver.script = [(503, {})] * 8
        deliverer = env.deliverer(jitter=0.1)
        for attempt in range(1, 9):
            assert await deliverer.run_once() == 1
            event = await env.event_row(event_id)
            assert event["attempts"] == attempt
            if attempt < 8:
                assert event["status"] == "pending"
                wait = event["next_attempt_at"] - env.clock()
                assert SCHEDULE[attempt] * 0.9 <= wait <= SCHEDULE[attempt] * 1.1
                env.clock.now = event["next_attempt_at"]
        event = await env.event_row(event_id)
        assert event["status"] == "failed" and event["next_attempt_at"] is None
        env.clock.advance(DAY)
        assert await deliverer.run_once() == 0
        assert len(env.receiver.requests) == 8
        assert len(await env.attempts(event_id)) == 8
        assert len({r.headers["webhook-id"] for r in env.receiver.requests}) == 1
        # 27.6 hours of failures: the endpoint is still enabled.
        assert (await env.hook_row(webhook_id))["status"] == "enabled"

    run(tmp_path, scenario, backend)


def test_jitter_zero_is_exact(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook()
        event_id = await env.event(webhook_id)
        env.receiver.script = [(500, {})]
        await env.deliverer(jitter=0).run_once()
        assert (await env.event_row(event_id))["next_attempt_at"] == env.clock() + 5

    run(tmp_path, scenario, backend)


def test_retry_after_is_honoured(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook()
        seconds, date, short = [await env.event(webhook_id) for _ in range(3)]
        env.receiver.script = [
            (429, {"Retry-After": "3600"}),
            (503, {"Retry-After": formatdate(env.clock() + 7200, usegmt=True)}),
            (503, {"Retry-After": "1"}),  # shorter than the schedule: the schedule wins
        ]
        deliverer = env.deliverer(concurrency=1)
        assert await deliverer.run_once() == 3
        assert (await env.event_row(seconds))["next_attempt_at"] == env.clock() + 3600
        assert abs((await env.event_row(date))["next_attempt_at"] - env.clock() - 7200) <= 1
        assert 4.5 <= (await env.event_row(short))["next_attempt_at"] - env.clock() <= 5.5

    run(tmp_path, scenario, backend)


def test_retry_after_parsing() -> None:
    assert retry_after(None, 0) is None
    assert retry_after("120", 0) == 120
    assert retry_after("soon", 0) is None
    assert retry_after(formatdate(1000, usegmt=True), 400) == 600
    assert retry_after(formatdate(1000, usegmt=True), 4000) == 0
    assert retry_after("999999999", 0) == DAY  # capped at a day


def test_410_disables_the_endpoint(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook()
        first = await env.event(webhook_id)
        env.receiver.script = [(410, {})]
        deliverer = env.deliverer()
        assert await deliverer.run_once() == 1
        assert (await env.event_row(first))["status"] == "failed"
        hook = await env.hook_row(webhook_id)
        assert hook["status"] == "disabled" and hook["disabled_reason"] == "410 Gone"
        (audit,) = await env.audits(webhook_id)
        assert audit["actor"] == "system:webhooks" and audit["action"] == "webhook.disable"
        assert json.loads(audit["detail"])["reason"] == "410 Gone"
        # A later event of the disabled endpoint fails without a request or an attempt row.
        later = await env.event(webhook_id)
        assert await deliverer.run_once() == 0
        assert (await env.event_row(later))["status"] == "failed"
        assert await env.attempts(later) == []
        assert len(env.receiver.requests) == 1

    run(tmp_path, scenario, backend)


def test_disabled_endpoint_fails_the_event_without_a_request(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook(status="disabled", disabled_reason="disabled by an admin")
        event_id = await env.event(webhook_id)
        assert await env.deliverer().run_once() == 0
        assert (await env.event_row(event_id))["status"] == "failed"
        assert await env.attempts(event_id) == []
        assert env.receiver.requests == []

    run(tmp_path, scenario, backend)


def test_failing_for_five_days_disables_the_endpoint(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        recent, _ = await env.hook(failing_since=env.clock() - 4 * DAY)
        old, _ = await env.hook(failing_since=env.clock() - 5 * DAY)
        recent_event, old_event = await env.event(recent), await env.event(old)
        env.receiver.script = [(500, {}), (500, {})]
        assert await env.deliverer(concurrency=1).run_once() == 2
        assert (await env.hook_row(recent))["status"] == "enabled"
        assert (await env.event_row(recent_event))["status"] == "pending"
        hook = await env.hook_row(old)
        assert hook["status"] == "disabled" and hook["disabled_reason"] == "failing for 5 days"
        assert (await env.event_row(old_event))["status"] == "failed"
        (audit,) = await env.audits(old)
        assert (audit["actor"], audit["action"]) == ("system:webhooks", "webhook.disable")
        assert await env.audits(recent) == []

    run(tmp_path, scenario, backend)


def test_rotation_signs_with_both_secrets_during_grace(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        previous = signing.new_secret()
        webhook_id, secret = await env.hook(
            previous_secret=previous, previous_valid_until=env.clock() + 60
        )
        await env.event(webhook_id)
        deliverer = env.deliverer()
        await deliverer.run_once()
        during = env.receiver.requests[-1]
        assert len(signatures(during)) == 2
        assert verify(secret, during) == verify(previous, during)
        env.clock.advance(61)
        await env.event(webhook_id)
        await deliverer.run_once()
        after = env.receiver.requests[-1]
        assert len(signatures(after)) == 1
        verify(secret, after)
        with pytest.raises(WebhookVerificationError):
            verify(previous, after)

    run(tmp_path, scenario, backend)


def test_private_address_refused_unless_allowed(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook()
        event_id = await env.event(webhook_id)
        strict = env.deliverer(allow_private=False)
        assert await strict.run_once() == 1
        assert env.receiver.requests == []
        (attempt,) = await env.attempts(event_id)
        assert attempt["error"] == "address not allowed" and attempt["status"] is None
        event = await env.event_row(event_id)
        assert event["status"] == "pending" and event["attempts"] == 1
        env.clock.advance(10)
        assert await env.deliverer(allow_private=True).run_once() == 1
        assert len(env.receiver.requests) == 1
        assert (await env.event_row(event_id))["status"] == "delivered"

    run(tmp_path, scenario, backend)


def test_every_resolved_address_must_be_public(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        asked: list[tuple[str, int]] = []

        async def resolver(host: str, port: int) -> list[str]:
            asked.append((host, port))
            return ["93.184.216.34", "169.254.169.254"]

        webhook_id, _ = await env.hook(url="https://hooks.example.test/in")
        event_id = await env.event(webhook_id)
        assert await env.deliverer(allow_private=False, resolver=resolver).run_once() == 1
        assert asked == [("hooks.example.test", 443)]
        (attempt,) = await env.attempts(event_id)
        assert attempt["error"] == "address not allowed"
        scheme, _ = await env.hook(url="ftp://hooks.example.test/in")
        scheme_event = await env.event(scheme)
        await env.deliverer(allow_private=True, resolver=resolver).run_once()
        assert (await env.attempts(scheme_event))[0]["error"] == "URL not allowed"
        assert len(asked) == 1

    run(tmp_path, scenario, backend)


def test_address_policy() -> None:
    refused = [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
        "fd00:ec2::254", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "2002:7f00:1::", "64:ff9b::a00:1", "2001:db8::1", "not an address",
    ]  # fmt: skip
    assert [a for a in refused if address_allowed(a)] == []
    allowed = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8",
               "64:ff9b::808:808"]  # fmt: skip
    assert [a for a in allowed if not address_allowed(a)] == []


def test_resolved_addresses_are_pinned_with_fallback(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        async def resolver(host: str, port: int) -> list[str]:
            assert host == "receiver.test"
            return ["127.0.0.2", "127.0.0.1"]  # nobody listens on .2: the next address is tried

        port = env.url.split(":")[2].split("/")[0]
        webhook_id, secret = await env.hook(url=f"http://receiver.test:{port}/pinned")
        event_id = await env.event(webhook_id)
        assert await env.deliverer(resolver=resolver).run_once() == 1
        (received,) = env.receiver.requests
        assert received.headers["host"] == f"receiver.test:{port}"
        assert received.path == "/pinned"
        verify(secret, received)
        assert (await env.event_row(event_id))["status"] == "delivered"

    run(tmp_path, scenario, backend)


def test_timeouts_refusals_and_redirects_are_failures(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        refused, _ = await env.hook(url=f"http://127.0.0.1:{closed}/")
        slow, _ = await env.hook()
        refused_event = await env.event(refused)
        await env.deliverer(timeout=0.3).run_once()
        assert (await env.attempts(refused_event))[0]["error"] == "ConnectError"
        slow_event = await env.event(slow)
        env.receiver.delay = 0.6
        await env.deliverer(timeout=0.3).run_once()
        (attempt,) = await env.attempts(slow_event)
        assert attempt["error"] == "ReadTimeout" and attempt["status"] is None
        assert (await env.event_row(slow_event))["attempts"] == 1
        env.receiver.delay = 0
        redirect, _ = await env.hook()
        redirect_event = await env.event(redirect)
        env.receiver.script = [(302, {"Location": f"{env.url}/elsewhere"})]
        before = len(env.receiver.requests)
        await env.deliverer().run_once()
        assert len(env.receiver.requests) == before + 1  # the redirect is not followed
        assert (await env.attempts(redirect_event))[0]["status"] == 302
        assert (await env.event_row(redirect_event))["status"] == "pending"
        assert all(b"task_1" not in (a["error"] or "").encode() for a in await env.rows(
            "SELECT error FROM webhook_attempts"))  # fmt: skip

    run(tmp_path, scenario, backend)


def test_redeliver_sends_again_with_the_same_id(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, secret = await env.hook()
        event_id = await env.event(webhook_id)
        deliverer = env.deliverer()
        await deliverer.run_once()
        assert (await env.event_row(event_id))["status"] == "delivered"
        env.clock.advance(30)
        assert await deliverer.redeliver(event_id)
        event = await env.event_row(event_id)
        assert event["status"] == "pending" and event["next_attempt_at"] == env.clock()
        assert await deliverer.run_once() == 1
        first, second = env.receiver.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
        verify(secret, second)
        assert (await env.event_row(event_id))["status"] == "delivered"
        assert not await deliverer.redeliver("msg_unknown")

    run(tmp_path, scenario, backend)


def test_concurrency_is_bounded_and_no_event_goes_twice_at_once(
    tmp_path: Path, backend: str
) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook()
        events = [await env.event(webhook_id) for _ in range(5)]
        env.receiver.delay = 0.1
        deliverer = env.deliverer(concurrency=2)
        made = await asyncio.gather(deliverer.run_once(), deliverer.run_once())
        assert sum(made) == 5
        assert env.receiver.max_active == 2
        ids = sorted(r.headers["webhook-id"] for r in env.receiver.requests)
        assert ids == sorted(events)

    run(tmp_path, scenario, backend)


def test_background_loop_delivers_promptly(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, secret = await env.hook()
        deliverer = Deliverer(env.state, allow_private=True)  # the real clock
        env.clock.now = time.time()
        await deliverer.start()
        try:
            await asyncio.sleep(0.05)
            started = time.monotonic()
            event_id = await env.event(webhook_id)
            deliverer.wake()
            while (await env.event_row(event_id))["status"] != "delivered":
                assert time.monotonic() - started < 3, "not delivered in time"
                await asyncio.sleep(0.01)
            assert time.monotonic() - started < 0.5  # woken, not found by the 1 s poll
            verify(secret, env.receiver.requests[-1])
        finally:
            await deliverer.stop()
        deliverer.wake()  # harmless once stopped

    run(tmp_path, scenario, backend)


def test_allow_private_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    async def scenario(env: Env) -> None:
        monkeypatch.setenv("NEXTAPI_WEBHOOK_ALLOW_PRIVATE", "1")
        assert Deliverer(env.state).allow_private is True
        monkeypatch.setenv("NEXTAPI_WEBHOOK_ALLOW_PRIVATE", "0")
        assert Deliverer(env.state).allow_private is False
        assert Deliverer(env.state, allow_private=True).allow_private is True

    run(tmp_path, scenario, backend)


def test_redeliver_during_an_attempt_sends_once_more(tmp_path: Path, backend: str) -> None:
    async def scenario(env: Env) -> None:
        webhook_id, _ = await env.hook()
        event_id = await env.event(webhook_id)
        env.receiver.delay = 0.2
        deliverer = env.deliverer()
        running = asyncio.create_task(deliverer.run_once())
        await env.receiver.arrived.wait()
        assert await deliverer.redeliver(event_id)  # while the first attempt is under way
        assert await running == 2  # due again at once when the first ended: sent in this run
        assert (await env.event_row(event_id))["status"] == "delivered"
        assert await deliverer.run_once() == 0
        assert [r.headers["webhook-id"] for r in env.receiver.requests] == [event_id] * 2

    run(tmp_path, scenario, backend)
