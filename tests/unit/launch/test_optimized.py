"""launch/optimized.py: the serving commands re-execute under `python -O`, the others do not."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from launch import optimized


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    fake_sys = SimpleNamespace(
        flags=SimpleNamespace(optimize=0),
        executable="/venv/bin/python",
        orig_argv=["/venv/bin/python", "run_proxy.py", "--demo"],
        stdout=sys.stdout,
    )
    monkeypatch.setattr(optimized, "sys", fake_sys)
    monkeypatch.setattr(optimized.os, "execv", lambda path, args: calls.append([path, *args]))
    monkeypatch.delenv("NEXTAPI_PYTHON_DEBUG", raising=False)
    return calls


def test_a_serving_command_is_run_again_under_dash_o(execs: list[list[str]]) -> None:
    optimized.reexec_optimized(["--demo"])
    assert execs == [["/venv/bin/python", "/venv/bin/python", "-O", "run_proxy.py", "--demo"]]


@pytest.mark.parametrize("argv", [["dev", "--listen", "127.0.0.1:0"], ["purge", "--dry-run"]])
def test_dev_and_purge_keep_the_interpreter_as_it_is(
    execs: list[list[str]], argv: list[str]
) -> None:
    optimized.reexec_optimized(argv)
    assert execs == []


def test_nextapi_python_debug_keeps_the_checks(
    execs: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEXTAPI_PYTHON_DEBUG", "1")
    optimized.reexec_optimized(["--demo"])
    assert execs == []


def test_an_optimized_process_is_not_run_again(execs: list[list[str]]) -> None:
    optimized.sys.flags.optimize = 1
    optimized.reexec_optimized(["--demo"])
    assert execs == []
