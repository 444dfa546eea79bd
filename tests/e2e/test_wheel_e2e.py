"""Installed as a package: the wheel carries every data file the code reads (the shipped
defaults, the model catalog, the dashboard's templates and vendored assets), and `nextapi-edge
--demo`, installed from it into a fresh venv and started from a fresh directory, serves a task
end to end with its data in `./data` there.

The venv is a real one (`python -m venv`, no system site-packages); pip resolves the wheel's
dependencies as it would for a user, from the configured index and the local wheel cache (about
40 s of the test's minute here). The demo is given port-0 flags: its fixed default ports may be
taken by another test or another run on this machine, and the ports are not what this test is
about (the defaults test, test_defaults_e2e.py, starts the demo on them)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.e2e.demo_checks import (
    Demo,
    assert_clean_log,
    assert_usage_agrees_with_the_log,
    drive_one_task,
    fresh_copy,
    wait_for_a_fold,
)
from tests.e2e.harness import ROOT, Process

PACKAGES = ("proxy/", "control/", "addons/", "simulator/", "launch/", "config/")


def run(*args: str | Path, cwd: Path = ROOT, timeout: float = 300) -> None:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


def test_the_installed_wheel_runs_the_demo_from_any_directory(tmp_path: Path) -> None:
    # Built from a copy of the working tree: an in-tree build reuses `build/lib`, whose files
    # from an earlier build would ship even once the package data no longer names them.
    source = fresh_copy(tmp_path / "source")
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", wheels, cwd=source)
    [wheel] = wheels.glob("nextapi_edge-*.whl")
    wanted = {
        path.relative_to(source).as_posix()
        for package in PACKAGES
        for path in (source / package).rglob("*")
        if path.is_file()
    }
    shipped = set(zipfile.ZipFile(wheel).namelist())
    assert sorted(wanted - shipped) == []

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, timeout=600)

    where = tmp_path / "anywhere"
    where.mkdir()
    env = {
        "NEXTAPI_ADMIN_TOKEN": "",
        "NEXTAPI_UPSTREAM_KEY": "",
        "NEXTAPI_ROLLUP_INTERVAL": "0.5",  # a fold every half second: the test waits for one
        "PYTHONPATH": "",  # nothing of the checkout: only what the wheel installed
        "VIRTUAL_ENV": str(venv),
    }
    located = subprocess.run(
        [venv / "bin" / "python", "-c", "import proxy, launch, config; print(proxy.__file__)"],
        cwd=where,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    assert located.stdout.startswith(str(venv)), located.stdout + located.stderr
    ports = ["--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0"]
    demo = Process(
        [str(venv / "bin" / "nextapi-edge"), "--demo", *ports, "--simulator-listen", "127.0.0.1:0"],
        env=env,
        cwd=where,
    )
    try:
        started = Demo.from_output(demo)
        _, sent = drive_one_task(started)
        assert_usage_agrees_with_the_log(started, sent)
        wait_for_a_fold(where / "data", timeout=30)  # the default data dir, relative to cwd
        assert_usage_agrees_with_the_log(started, sent)
    finally:
        demo.stop()
    assert_clean_log(demo.output())
