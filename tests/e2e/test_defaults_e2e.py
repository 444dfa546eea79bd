"""The README's demo command as printed, `./dev demo`, with no flag and no setting beyond it,
from a fresh copy of the repository: it serves a task with the printed key; the usage aggregates
answer 200 and agree with the request log, before and after the first scheduled rollup fold
(the default interval, a minute: the test waits for it, since the fold raising on the default
relative data dir was the bug); the dashboard's overview renders its charts in Chromium without a
console error or CSP violation; and the log holds no ERROR and no traceback.

"As a user does", chosen honestly:
- The copy is the working tree's files as git knows them (tracked and new, not ignored: what a
  clone of this change holds), so no `data/` and no `.venv` of the checkout come along, and an
  uncommitted change is tested rather than HEAD.
- Its `.venv` is pre-seeded with hard links to the venv running the tests: `./dev` still runs its
  own `pip install -e '.[test]'` in the copy (re-pointing the project at the copy and checking
  every dependency), so the code that runs is the copy's and `./dev` is what starts it; only the
  download and build of third-party wheels (minutes here) is skipped. The wheel test installs
  the dependencies into a really fresh venv.
- The demo listens on its fixed default ports (8080, 9090, 8788): the test checks they are free
  first and says which is taken rather than failing obscurely."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.browser import Watched, login, shoot
from tests.e2e.demo_checks import (
    DEFAULT_ADDRESSES,
    Demo,
    assert_clean_log,
    assert_free,
    assert_usage_agrees_with_the_log,
    drive_one_task,
    fresh_copy,
    wait_for_a_fold,
)
from tests.e2e.harness import Process


@pytest.fixture
def dev_demo(tmp_path: Path) -> Iterator[tuple[Process, Path]]:
    assert_free(DEFAULT_ADDRESSES)
    clone = fresh_copy(tmp_path / "nextapi-edge")
    subprocess.run(["cp", "-al", sys.prefix, str(clone / ".venv")], check=True)
    # No setting of the test runner's reaches the demo: its NEXTAPI_* variables are unset (an
    # empty one would still be a setting), and nothing of the checkout is on the path.
    unset = [arg for name in os.environ if name.startswith("NEXTAPI_") for arg in ("-u", name)]
    process = Process(["env", *unset, "./dev", "demo"], env={"PYTHONPATH": ""}, cwd=clone)
    yield process, clone
    process.stop()


def test_dev_demo_as_printed_works_from_a_fresh_copy(
    dev_demo: tuple[Process, Path], browser: Browser
) -> None:
    process, clone = dev_demo
    demo = Demo.from_output(process, timeout=600)  # ./dev first installs the copy into .venv
    assert demo.edge_url == "http://127.0.0.1:8080" and demo.control_url.endswith(":9090")
    located = subprocess.run(
        [clone / ".venv" / "bin" / "python", "-c", "import proxy; print(proxy.__file__)"],
        cwd=clone.parent,
        capture_output=True,
        text=True,
    )
    assert located.stdout.startswith(str(clone / "proxy")), located.stdout + located.stderr

    _, sent = drive_one_task(demo)
    assert_usage_agrees_with_the_log(demo, sent)

    session = Watched(browser, demo.control_url)
    try:
        login(session.page, demo.admin_token)
        expect(session.page.locator("#charts")).to_have_attribute("data-drawn", "true")
        expect(session.page.locator(".uplot")).to_have_count(3)
        shoot(session.page, "demo-overview")
    finally:
        session.close()
    assert session.errors == [], session.errors

    wait_for_a_fold(clone / "data", timeout=120)  # the default data dir, `data`, in the copy
    assert_usage_agrees_with_the_log(demo, sent)
    process.stop()
    assert_clean_log(process.output())
