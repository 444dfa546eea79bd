"""What the demo e2e tests check of a running `--demo`, however it was started (run_proxy.py,
`./dev demo`, an installed `nextapi-edge`): one task driven through with the printed key, the
usage aggregates agreeing with the request log, a rollup fold that covered the task's rows, and
a log without errors."""

from __future__ import annotations

import re
import shutil
import socket
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from control.store import requestlog
from control.store.rollupfile import rollup_path
from tests.e2e.harness import ROOT, Process

TASKS = "/api/v3/contents/generations/tasks"
# The demo's default addresses (proxy/options/schema.py, launch/settings.py): a test that starts the
# demo as printed, without flags, needs them free.
DEFAULT_ADDRESSES = {"edge": 8080, "control plane": 9090, "simulator": 8788}


@dataclass(frozen=True)
class Demo:
    """What a demo prints: its addresses, the demo org, its key and the admin token."""

    edge_url: str
    control_url: str
    org_id: str
    key: str
    admin_token: str

    @classmethod
    def from_output(cls, process: Process, timeout: float = 60.0) -> Demo:
        process.wait_for(r"^Request log \(admin\):", timeout=timeout)
        output = process.output()

        def printed(pattern: str) -> str:
            match = re.search(pattern, output, re.MULTILINE)
            assert match, f"the demo did not print {pattern!r}:\n{output}"
            return match.group(1)

        return cls(
            edge_url="http://" + printed(r"^edge listening on (\S+)$"),
            control_url=printed(r"^  control:\s+(\S+)$"),
            org_id=printed(r"^  demo org:\s+(\S+)$"),
            key=printed(r"^  demo key:\s+(nk_live_\S+)$"),
            admin_token=printed(r"^  admin token:\s+(\S+)$"),
        )

    def admin(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return httpx.Client(base_url=self.control_url, headers=headers, timeout=15)


def fresh_copy(target: Path) -> Path:
    """The working tree's files as git knows them (tracked and new, not ignored: what a clone of
    this change holds), copied to `target`: no `.venv`, `data/`, `build/` or egg-info of the
    checkout come along."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def assert_free(ports: dict[str, int]) -> None:
    """The README's command binds fixed ports: say which is taken rather than fail obscurely."""
    for what, port in ports.items():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                raise AssertionError(
                    f"port {port} (the demo's {what}) is taken ({exc.strerror}): this test "
                    "runs the demo as printed, on its default ports; free it and run again"
                ) from None


def drive_one_task(demo: Demo, timeout: float = 60.0) -> tuple[str, int]:
    """Creates a task with the printed key and polls it until it succeeded: the task's id
    and how many requests were sent through the edge."""
    headers = {"Authorization": f"Bearer {demo.key}"}
    body = {
        "model": "dreamina-seedance-2-0-260128",
        "content": [{"type": "text", "text": "a cat surfing a wave"}],
    }
    with httpx.Client(base_url=demo.edge_url, headers=headers, timeout=15) as edge:
        created = edge.post(TASKS, json=body)
        assert created.status_code == 200, created.text
        task_id = created.json()["id"]
        sent = 1
        deadline = time.monotonic() + timeout
        while True:
            polled = edge.get(f"{TASKS}/{task_id}")
            sent += 1
            assert polled.status_code == 200, polled.text
            status = polled.json()["status"]
            if status == "succeeded":
                return task_id, sent
            assert status in ("queued", "running"), polled.text
            assert time.monotonic() < deadline, f"task {task_id} still {status}"
            time.sleep(0.2)


def request_log(admin: httpx.Client, org_id: str, sent: int, timeout: float = 20.0) -> list[dict]:
    """The org's request log once it holds the `sent` requests (reads are spooled)."""
    deadline = time.monotonic() + timeout
    while True:
        page = admin.get(f"/v1/orgs/{org_id}/requests", params={"limit": 1000})
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        if len(items) >= sent or time.monotonic() > deadline:
            assert len(items) == sent, f"{len(items)} logged of {sent} sent"
            return items


def assert_usage_agrees_with_the_log(demo: Demo, sent: int) -> None:
    """`GET /v1/orgs/{org}/usage` and `GET /v1/usage` answer 200 with the figures the request
    log adds up to."""
    with demo.admin() as admin:
        log = request_log(admin, demo.org_id, sent)
        expected = {
            "requests": len(log),
            "errors_4xx": sum(400 <= r["status"] < 500 for r in log),
            "errors_5xx": sum(r["status"] >= 500 for r in log),
            "bytes_in": sum(r["bytes_in"] for r in log),
            "bytes_out": sum(r["bytes_out"] for r in log),
            # A create's record carries its hold; the read that saw the task succeed, the charge.
            "credits_reserved": sum(r["credits"] or 0 for r in log if r["method"] == "POST"),
            "credits_charged": sum(r["credits"] or 0 for r in log if r["method"] != "POST"),
            "tasks_created": 1,
            "tasks_succeeded": 1,
        }
        org = admin.get(f"/v1/orgs/{demo.org_id}/usage")
        assert org.status_code == 200, org.text
        everyone = admin.get("/v1/usage", params={"group_by": "org"})
        assert everyone.status_code == 200, everyone.text
    [org_row] = org.json()["items"]
    [org_in_all] = [row for row in everyone.json()["items"] if row["org_id"] == demo.org_id]
    for row in (org_row, org_in_all):
        assert {name: row[name] for name in expected} == expected, (row, log)


def folded_and_logged(data_dir: Path) -> tuple[int, int]:
    """The rollups' watermark and the request log's last usage row, read from the files."""
    with sqlite3.connect(rollup_path(data_dir).as_uri() + "?mode=ro", uri=True) as rollups:
        row = rollups.execute("SELECT value FROM meta WHERE key='usage_rowid'").fetchone()
    log = requestlog.log_path(data_dir).as_uri() + "?mode=ro"
    with sqlite3.connect(log, uri=True) as db:
        (last,) = db.execute("SELECT COALESCE(MAX(rowid), 0) FROM usage").fetchone()
    return (int(row[0]) if row else 0), last


def wait_for_a_fold(data_dir: Path, timeout: float) -> None:
    """Waits until a scheduled fold has folded every usage row logged so far."""
    _, last = folded_and_logged(data_dir)
    assert last > 0, "no usage was logged"
    deadline = time.monotonic() + timeout
    while (folded := folded_and_logged(data_dir)[0]) < last:
        assert time.monotonic() < deadline, f"no fold within {timeout} s: {folded} of {last}"
        time.sleep(0.5)


def assert_clean_log(output: str) -> None:
    """No line logged at ERROR, no traceback."""
    bad = [line for line in output.splitlines() if re.search(r"\bERROR\b|Traceback", line)]
    assert bad == [], "\n".join(bad)
