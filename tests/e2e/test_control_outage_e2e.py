"""An edge apart (`--role edge`) outlives its control plane: it keeps serving on its last policy
snapshot while the control plane is stopped, keeps the usage in its local spool, and once the
control plane is back (same port, same data directory) every usage record reaches it.

The reads are gets of a task the edge knows the owner of (it relayed its create): a list, or a
task it never saw, needs the control plane to check ownership, and is refused meanwhile
(tests/e2e/test_ownership_outage_e2e.py)."""

from __future__ import annotations

import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from proxy.usage.segment import SEGMENT_SUFFIX, read_segment
from tests.e2e.harness import TEXT_CREATE, Process, Simulator, address, control_process

TASKS = "/api/v3/contents/generations/tasks"
# A paced load: 4 threads x 25 requests/s, every 4th a create. That stays far below the
# simulator's 120 queued tasks and below any default rate limit, so every answer should be a 200.
THREADS = 4
REQUESTS_PER_SECOND_PER_THREAD = 25
CREATE_EVERY = 4
OUTAGE_REQUESTS = 50  # answered while the control plane is down, at least
OUTAGE_CREATES = 10  # of which creates, at least
AFTER_RESTART_REQUESTS = 20  # made once the control plane is back, at least
SINK_FAILURES = 3  # failed attempts to ship usage while the control plane is down


def start_control(data_dir: Path, token: str, listen: str = "127.0.0.1:0") -> tuple[Process, str]:
    process = control_process(data_dir, token, listen)
    return process, address(process, "control")


def wait_for_new_lines(
    process: Process, start: int, needle: str, count: int, timeout: float
) -> None:
    """Wait until `count` output lines after the first `start` lines contain `needle`."""
    deadline = time.monotonic() + timeout
    while sum(needle in line for line in process.lines[start:]) < count:
        assert time.monotonic() < deadline, (
            f"not {count} lines containing {needle!r} within {timeout} s; output:\n"
            + "\n".join(process.lines[-40:])
        )
        time.sleep(0.02)


def spooled_ids(spool_dir: Path) -> set[str]:
    """Request ids in the edge's spool segments right now (a torn tail is simply not read)."""
    ids: set[str] = set()
    for path in spool_dir.glob(f"*{SEGMENT_SUFFIX}"):
        try:
            ids.update(str(record.get("request_id")) for record in read_segment(path))
        except FileNotFoundError:
            pass  # shipped and deleted meanwhile
    return ids


@dataclass
class Answer:
    started: float
    ended: float
    method: str
    status: int
    request_id: str


@dataclass
class Load:
    """A few threads sending GETs and POSTs to the edge until told to stop."""

    edge_url: str
    key: str
    task_path: str  # what the GETs read
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._worker, args=(n,)) for n in range(THREADS)]
        for thread in self.threads:
            thread.start()

    def _worker(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        period = 1 / REQUESTS_PER_SECOND_PER_THREAD
        next_at = time.monotonic() + n * period / THREADS
        with httpx.Client(base_url=self.edge_url, headers=headers, timeout=10) as client:
            i = n
            while not self.stop.wait(max(0.0, next_at - time.monotonic())):
                next_at += period
                i += 1
                method = "POST" if i % CREATE_EVERY == 0 else "GET"
                started = time.monotonic()
                try:
                    if method == "POST":
                        response = client.post(TASKS, json=TEXT_CREATE)
                    else:
                        response = client.get(self.task_path)
                except httpx.HTTPError as exc:
                    with self.lock:
                        self.errors.append(f"{method}: {type(exc).__name__}: {exc}")
                    return
                answer = Answer(
                    started,
                    time.monotonic(),
                    method,
                    response.status_code,
                    response.headers.get("x-request-id", ""),
                )
                with self.lock:
                    self.answers.append(answer)

    def snapshot(self) -> list[Answer]:
        with self.lock:
            return list(self.answers)

    def wait_until(self, predicate, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.snapshot()):
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"load: {what} not reached within {timeout} s"
            time.sleep(0.02)

    def finish(self) -> list[Answer]:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)
        assert not any(thread.is_alive() for thread in self.threads), "a load thread hangs"
        return self.snapshot()


def request_log_ids(admin: httpx.Client, org_id: str) -> set[str]:
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = admin.get(f"/v1/orgs/{org_id}/requests", params=params)
        page.raise_for_status()
        body = page.json()
        ids.update(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return ids


def test_edge_serves_through_control_outage_and_loses_no_usage(
    simulator: Simulator, tmp_path: Path
) -> None:
    began = time.monotonic()
    token = "nat_test_" + secrets.token_urlsafe(16)
    control_dir = tmp_path / "control"
    edge_dir = tmp_path / "edge"
    control, control_url = start_control(control_dir, token)
    port = int(control_url.rsplit(":", 1)[1])
    edge: Process | None = None
    load: Load | None = None
    admin = httpx.Client(
        base_url=control_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    try:
        # 1. An org and a key on the control plane; an edge apart that learns the key.
        # Limits of its own, far above this load: rate limits are not what this test is about.
        limits = {
            "requests_per_minute": 10**6,
            "requests_per_day": 10**6,
            "concurrent_tasks": 10**6,
        }
        org = admin.post(
            "/v1/orgs", json={"name": "outage", "email": "o@example.com", "rate_limit": limits}
        )
        assert org.status_code == 201, org.text
        org_id = org.json()["id"]
        granted = admin.post(f"/v1/orgs/{org_id}/credits", json={"amount": 10**12})
        assert granted.status_code == 201, granted.text
        created = admin.post(f"/v1/orgs/{org_id}/keys", json={"name": "k"})
        assert created.status_code == 201, created.text
        key = created.json()["key"]

        edge = Process(
            [
                sys.executable,
                "run_proxy.py",
                "--role",
                "edge",
                "--control-url",
                control_url,
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                simulator.url,
                "--data-dir",
                str(edge_dir),
            ],
            env={"NEXTAPI_ADMIN_TOKEN": token, "NEXTAPI_UPSTREAM_KEY": simulator.api_key},
        )
        edge_url = address(edge, "edge")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=edge_url, headers=headers, timeout=10) as client:
            deadline = time.monotonic() + 10
            while (response := client.get(TASKS)).status_code in (401, 503):
                assert time.monotonic() < deadline, "the key never worked at the edge"
                time.sleep(0.02)
            assert response.status_code == 200, response.text
            warmup_id = response.headers["x-request-id"]
            created = client.post(TASKS, json=TEXT_CREATE)
            assert created.status_code == 200, created.text
            task_path = f"{TASKS}/{created.json()['id']}"
            while (task := client.get(task_path)).json()["status"] != "succeeded":
                assert time.monotonic() < deadline + 10, task.text
                time.sleep(0.05)
            warmup_ids = {warmup_id, created.headers["x-request-id"]}
            warmup_ids |= {task.headers["x-request-id"]}

        # 2. Load from a few threads.
        load = Load(edge_url, key, task_path)
        load.start()
        load.wait_until(lambda a: len(a) >= 20, "20 answers before the outage", 10)

        # 3. Stop the control plane under load.
        edge_lines_before = len(edge.lines)
        admin.close()
        stopping_at = time.monotonic()  # the control plane refuses work from here on
        assert control.stop() == 0, control.output()[-2000:]
        down_at = time.monotonic()

        def during_outage(answers: list[Answer]) -> list[Answer]:
            return [a for a in answers if a.started >= down_at]

        load.wait_until(
            lambda a: (
                len(during_outage(a)) >= OUTAGE_REQUESTS
                and sum(x.method == "POST" for x in during_outage(a)) >= OUTAGE_CREATES
            ),
            f"{OUTAGE_REQUESTS} answers ({OUTAGE_CREATES} creates) while the control plane is down",
            10,
        )
        # The edge noticed: it serves on its last snapshot and cannot ship usage; let it retry
        # (and fail) a few times, so the outage spans several ingest ticks (0.25 s apart): the
        # edge says so once, and once more only every 30 s (see the line when it is back) ...
        wait_for_new_lines(edge, edge_lines_before, "policy snapshot fetch failed", 2, 10)
        wait_for_new_lines(edge, edge_lines_before, "usage spool: sink failed", 1, 10)
        time.sleep(SINK_FAILURES * 0.25)
        # ... and the usage of the requests answered meanwhile is in its local spool.
        outage_ids = {a.request_id for a in during_outage(load.snapshot())}
        deadline = time.monotonic() + 5
        while missing_from_spool := outage_ids - spooled_ids(edge_dir / "spool"):
            assert time.monotonic() < deadline, (
                f"{len(missing_from_spool)} of {len(outage_ids)} outage records not in the spool"
            )
            time.sleep(0.05)

        # Restart the control plane on the same port, with the same data directory.
        up_at = time.monotonic()
        control, restarted_url = start_control(control_dir, token, f"127.0.0.1:{port}")
        assert restarted_url == control_url
        admin = httpx.Client(
            base_url=control_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        back_at = time.monotonic()
        back = edge.wait_for(r"usage spool: sink back after (\d+) failures", 15)
        assert int(back.group(1)) >= SINK_FAILURES
        outage_lines = [
            x for x in edge.lines[edge_lines_before:] if "usage spool: sink failed" in x
        ]
        assert len(outage_lines) == 1, outage_lines  # the outage was shorter than 30 s
        load.wait_until(
            lambda a: sum(x.started >= back_at for x in a) >= AFTER_RESTART_REQUESTS,
            f"{AFTER_RESTART_REQUESTS} answers after the restart",
            10,
        )

        # 4. Stop the load; every answered request has its record on the control plane.
        answers = load.finish()
        load = None

        def acceptable(a: Answer) -> bool:
            # Reads are served on the last snapshot. Creates need the control plane's credits
            # ledger: while it is away they are refused (503), never relayed unbilled.
            if a.status == 200:
                return True
            # A create in flight while the control plane was stopping overlaps the outage too.
            in_outage = a.ended >= stopping_at and a.started <= back_at + 2
            return a.method == "POST" and a.status == 503 and in_outage

        refused = [
            (a.method, a.status, round(a.started - down_at, 3), round(a.started - back_at, 3))
            for a in answers
            if not acceptable(a)
        ]
        assert not refused, f"(method, status, since down, since back): {refused[:10]}"
        assert all(a.status == 200 for a in answers if a.method == "GET")
        outage = [a for a in answers if a.started >= down_at and a.ended <= up_at]
        assert len(outage) >= OUTAGE_REQUESTS
        expected = {a.request_id for a in answers} | warmup_ids
        assert len(expected) == len(answers) + len(warmup_ids), "duplicate or missing X-Request-Id"

        deadline = time.monotonic() + 15
        while missing := expected - request_log_ids(admin, org_id):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print(
            f"\ncontrol outage: {len(answers)} requests answered in total "
            f"({sum(a.method == 'POST' for a in answers)} creates), "
            f"{len(outage)} during the {up_at - down_at:.2f} s outage; "
            f"{len(expected) - len(missing)} of {len(expected)} records on the control plane, "
            f"{len(missing)} missing; test took {time.monotonic() - began:.1f} s"
        )
        assert not missing, f"{len(missing)} usage records never reached the control plane"
    finally:
        if load is not None:
            load.stop.set()
            for thread in load.threads:
                thread.join(15)
        admin.close()
        if edge is not None:
            edge.stop()
        control.stop()
    assert edge is not None and key not in edge.output()  # the edge never logs a customer key
