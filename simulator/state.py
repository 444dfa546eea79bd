"""What one simulator instance holds: its knobs, tasks and inspection logs."""

from __future__ import annotations

import string
import time
from collections import deque
from collections.abc import Callable
from random import Random
from typing import Any

from simulator.config import SimulatorConfig
from simulator.tasks import Task

LOG_SIZE = 1000
_ID_CHARS = string.ascii_lowercase + string.digits


class SimState:
    def __init__(self, config: SimulatorConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self._clock = clock
        self.faults = Random(config.seed)
        """Draws for `error_rate`; reseeded whenever `seed` is set."""
        self.random = Random()
        """Task ids and random seeds."""
        self.tasks: dict[str, Task] = {}
        self.requests: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self.callbacks: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self.downloads: dict[str, int] = {}  # file name -> times a video or frame was fetched

    def clock(self) -> float:
        """The simulator's time: the real clock, shifted by `clock_offset` (an upstream whose
        tasks ended days ago, for tests of what happens after a retention period)."""
        return self._clock() + self.config.clock_offset

    def configure(self, changes: dict[str, Any]) -> None:
        """Apply knob changes (raises ConfigError, leaving the knobs as they were)."""
        self.config = self.config.updated(changes)
        if "seed" in changes:
            self.faults = Random(self.config.seed)

    def new_task_id(self, now: float) -> str:
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
        while True:
            suffix = "".join(self.random.choices(_ID_CHARS, k=5))
            task_id = f"cgt-{stamp}-{suffix}"
            if task_id not in self.tasks:
                return task_id

    def queued_count(self, now: float) -> int:
        return sum(1 for task in self.tasks.values() if task.status(now) == "queued")
