"""launch/memory.py: with glibc's mmap threshold fixed, Argon2id's 19 MiB buffers, freed in the
verifier threads, are given back to the system (they stayed in each thread's arena)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# Two threads verify keys, as the edge's verifiers do; RSS before and after, in MiB.
CHILD = """
import json, os, sys, threading
from launch.memory import give_back_big_blocks
fixed = give_back_big_blocks() if sys.argv[1] == "fixed" else False
from argon2 import PasswordHasher
hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
digest = hasher.hash("the secret")

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def verify():
    for _ in range(3):
        try:
            hasher.verify(digest, "a wrong secret")
        except Exception:
            pass

before = rss()
threads = [threading.Thread(target=verify) for _ in range(2)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"fixed": fixed, "growth": rss() - before}))
"""


def growth(mode: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_argon2_buffers_are_given_back_once_the_threshold_is_fixed() -> None:
    fixed, default = growth("fixed"), growth("default")
    print(f"\nRSS growth after 6 verifications in 2 threads: {fixed} vs {default}")
    assert fixed["fixed"] is True
    assert fixed["growth"] < 8  # MiB: the buffers went back (one is 19 MiB)


def test_an_operators_own_threshold_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    from launch.memory import give_back_big_blocks

    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1048576")
    assert give_back_big_blocks() is False
