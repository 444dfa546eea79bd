"""A process's CPU capped at a share of one core, through a control group of its own (cgroup v1's
`cpu` controller, else v2's `cpu.max`; root, or a delegated group, can make one). For a bench on
a machine with few cores, a capped process stands in for one given a machine of its own: with
each control plane capped, the replicas are what limits the holds, not the machine they share
with the database and the clients.

    with CpuCap(pid, 0.3):
        ...  # the process at `pid`, and any it starts, get at most 0.3 of a core
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType

V1_CPU = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")
# A short accounting period: a capped process runs its share of every 10 ms, rather than a
# burst and then 70 ms stopped, which would add CFS's throttling to every latency measured.
PERIOD_US = 10_000


class CpuCapUnavailable(RuntimeError):
    pass


class CpuCap:
    def __init__(self, pid: int, cores: float) -> None:
        if not 0 < cores:
            raise ValueError("a CPU cap is a positive share of a core")
        self.pid, self.cores = pid, cores
        self.group: Path | None = None

    def __enter__(self) -> CpuCap:
        quota = max(1000, round(self.cores * PERIOD_US))
        name = f"nextapi-bench-{os.getpid()}-{self.pid}"
        try:
            if (V1_CPU / "cpu.cfs_quota_us").exists():
                self.group = V1_CPU / name
                self.group.mkdir()
                (self.group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (self.group / "cpu.cfs_quota_us").write_text(str(quota))
            elif "cpu" in (V2_ROOT / "cgroup.subtree_control").read_text().split():
                self.group = V2_ROOT / name
                self.group.mkdir()
                (self.group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            else:
                raise CpuCapUnavailable("no cgroup v1 cpu controller, nor v2's delegated")
            (self.group / "cgroup.procs").write_text(str(self.pid))
        except OSError as failed:
            self._remove()
            raise CpuCapUnavailable(
                f"cannot cap a process's CPU here ({failed}): run as root, on Linux with the "
                "cgroup cpu controller writable"
            ) from None
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._remove()

    def _remove(self) -> None:
        """The group gone, once its processes are (each moved back to the root group first)."""
        if self.group is None or not self.group.exists():
            return
        root = self.group.parent / "cgroup.procs"
        with contextlib.suppress(OSError):
            for pid in (self.group / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    root.write_text(pid)
        with contextlib.suppress(OSError):
            self.group.rmdir()
        self.group = None
