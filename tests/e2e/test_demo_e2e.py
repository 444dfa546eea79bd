"""`run_proxy.py --demo`: the printed curl and SDK examples work as pasted."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import Process, address


@pytest.fixture
def demo(tmp_path: Path):
    process = Process(
        [
            sys.executable,
            "run_proxy.py",
            "--demo",
            "--data-dir",
            str(tmp_path / "demo"),
            "--listen",
            "127.0.0.1:0",
            "--control-listen",
            "127.0.0.1:0",
            "--simulator-listen",
            "127.0.0.1:0",
        ],
        env={"NEXTAPI_ADMIN_TOKEN": "", "NEXTAPI_UPSTREAM_KEY": ""},
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
