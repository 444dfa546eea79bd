"""`run_proxy.py --demo`: the printed curl and SDK examples work as pasted, the usage aggregates
agree with the request log after a rollup fold, the log holds no error; a taken port ends the
start in one sentence."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.demo_checks import (
    Demo,
    assert_clean_log,
    assert_usage_agrees_with_the_log,
    drive_one_task,
    wait_for_a_fold,
)
from tests.e2e.harness import Process, address

FREE_PORTS = ["--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0"]
FREE_PORTS += ["--simulator-listen", "127.0.0.1:0"]


@pytest.fixture
def demo(tmp_path: Path):
    process = Process(
        [
            sys.executable,
            "run_proxy.py",
            "--demo",
            "--data-dir",
            str(tmp_path / "demo"),
            *FREE_PORTS,
        ],
        # A fold every half second rather than every minute: the test waits for one.
        env={
            "NEXTAPI_ADMIN_TOKEN": "",
            "NEXTAPI_UPSTREAM_KEY": "",
            "NEXTAPI_ROLLUP_INTERVAL": "0.5",
        },
    )
    address(process, "edge")
    process.wait_for(r"^Request log \(admin\):")
    process.wait_for(r"curl -s http://\S+/requests")
    yield process
    process.stop()


def snippet(output: str, start: str, end: str) -> str:
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    last = next(i for i in range(first, len(lines)) if re.match(end, lines[i]))
    return "\n".join(lines[first : last + 1])


def test_demo_examples_work_as_pasted(demo: Process) -> None:
    output = demo.output()
    assert "demo key:    nk_live_" in output

    curl = snippet(output, "  curl -s http", r".*-d '")
    created = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
    assert json.loads(created.stdout)["id"].startswith("cgt-"), created.stdout

    sdk = snippet(output, f"  {sys.executable} - <<'PY'", r"^PY$")
    ran = subprocess.run(["bash", "-c", sdk], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    task_id, status = ran.stdout.split()
    assert task_id.startswith("cgt-") and status in ("queued", "running", "succeeded")

    log = snippet(output, "  curl -s http", r".*/requests")
    log = log.splitlines()[-1]
    records = json.loads(
        subprocess.run(["bash", "-c", log], capture_output=True, text=True, timeout=30).stdout
    )["items"]
    assert len(records) >= 1  # the curl create at least (reads may still be in flight)


def test_demo_buy_credits_example_works_as_pasted(demo: Process) -> None:
    """The printed checkout runs against the demo's Stripe simulator: paying on its page grows
    the printed balance by the pack."""
    output = demo.output()
    lines = snippet(output, "Buy credits (the Stripe simulator", r".*/balance ").splitlines()
    checkout = "\n".join(lines[2:4])
    balance = lines[4]

    def available() -> int:
        shown = subprocess.run(["bash", "-c", balance], capture_output=True, text=True, timeout=30)
        return json.loads(shown.stdout)["available"]

    before = available()
    made = subprocess.run(["bash", "-c", checkout], capture_output=True, text=True, timeout=30)
    session = json.loads(made.stdout)
    page = httpx.get(session["url"], timeout=10)
    assert page.status_code == 200 and "Pay" in page.text
    paid = httpx.post(session["url"] + "/pay", timeout=10)
    assert paid.status_code == 303
    deadline = time.monotonic() + 10
    while available() != before + 10_000_000:
        assert time.monotonic() < deadline, "the demo's balance never grew by the pack"
        time.sleep(0.05)


def test_demo_usage_agrees_with_the_request_log_after_a_fold(demo: Process, tmp_path: Path) -> None:
    started = Demo.from_output(demo)
    _, sent = drive_one_task(started)
    assert_usage_agrees_with_the_log(started, sent)  # before the fold: from the log's rows
    wait_for_a_fold(tmp_path / "demo", timeout=30)
    assert_usage_agrees_with_the_log(started, sent)  # after it: from the rollups
    assert_clean_log(demo.output())


@pytest.mark.parametrize(
    ("flag", "what"),
    [
        ("--simulator-listen", "the simulator"),
        ("--control-listen", "the control plane"),
        ("--listen", "the edge"),
    ],
)
def test_a_taken_port_ends_the_demo_in_one_sentence(tmp_path: Path, flag: str, what: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        flags = list(FREE_PORTS)
        flags[flags.index(flag) + 1] = taken
        process = Process(
            [sys.executable, "run_proxy.py", "--demo", "--data-dir", str(tmp_path), *flags],
            env={"NEXTAPI_ADMIN_TOKEN": "", "NEXTAPI_UPSTREAM_KEY": ""},
        )
        try:
            process.proc.wait(60)
        finally:
            code = process.stop()
    output = process.output()
    assert code != 0, output
    assert "Traceback" not in output, output
    assert output.splitlines()[-1] == (
        f"cannot start: {what}'s address {taken} is already in use; "
        f"stop what holds it or choose another with {flag} HOST:PORT"
    )
    assert "listening on" not in output  # refused before anything started
