"""`run_proxy.py dev --mode local:PID`: one process with no proxy settings at all has its Seedance
calls caught by mitmproxy's local (eBPF) redirector.

What the redirector needs on Linux, set up here without touching the rest of the machine:
- root, and a kernel >= 6.8 with BPF cgroup support;
- cgroup v2 at /sys/fs/cgroup: where it is not (a hybrid v1 layout keeps it at
  /sys/fs/cgroup/unified), the dev proxy runs in its own mount namespace with it bound there;
- `sudo` on PATH (mitmproxy starts the redirector through `sudo` even for root): where there is
  none, a stand-in that runs its command as the root caller.
The app is named by PID (not by name), so no other process on the machine is redirected; it
runs in its own mount namespace with an /etc/hosts naming the Seedance host, so it needs no DNS.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import ROOT, Process

BYTEPLUS = "ark.ap-southeast.bytepluses.com"


def cgroup2_at_root() -> bool:
    done = subprocess.run(["stat", "-fc", "%T", "/sys/fs/cgroup"], capture_output=True, text=True)
    return done.stdout.strip() == "cgroup2fs"


def test_local_mode_catches_a_process_by_pid(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "local mode needs root"
    release = tuple(int(x) for x in os.uname().release.split(".")[:2])
    assert release >= (6, 8), f"local mode needs Linux >= 6.8, this is {os.uname().release}"

    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n192.0.2.10 {BYTEPLUS}\n")
    data_dir = tmp_path / "data"
    # The app waits for a line on stdin, so the proxy can be told its PID before it calls.
    app = subprocess.Popen(
        [
            *("unshare", "-m", "bash", "-c"),
            'mount --make-rprivate / && mount --bind "$0" /etc/hosts && read go && exec "$@"',
            *(str(hosts), sys.executable, "tests/e2e/dev_sdk_child.py", "byteplus"),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ,
            "SSL_CERT_FILE": str(data_dir / "dev" / "ca-bundle.pem"),
            "HTTPS_PROXY": "",
            "HTTP_PROXY": "",
            "ALL_PROXY": "",
        },
    )
    path = os.environ["PATH"]
    if shutil.which("sudo") is None:
        shim = tmp_path / "bin"
        shim.mkdir()
        (shim / "sudo").write_text(
            '#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n'
        )
        (shim / "sudo").chmod(0o755)
        path = f"{shim}:{path}"
    cgroup = "" if cgroup2_at_root() else "mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && "
    dev = [sys.executable, "run_proxy.py", "dev", "--mode", f"local:{app.pid}", "--json"]
    dev += ["--data-dir", str(data_dir), "--queued-seconds", "0.2", "--running-seconds", "0.4"]
    script = f'mount --make-rprivate / && {cgroup}exec "$0" "$@"'
    proxy = Process(
        ["unshare", "-m", "bash", "-c", script, *dev],
        env={"PATH": path},
    )
    try:
        proxy.wait_for(r"^dev proxy intercepting local processes")
        proxy.wait_for(r"^ca bundle: ")
        output, _ = app.communicate(input="go\n", timeout=60)
        assert app.returncode == 0, output
        task_id = output.split("succeeded ")[1].split()[0]
        create = proxy.wait_for(r'^\{.*"method":"POST"').string
        assert f'"task_id":"{task_id}"' in create and f'"host":"{BYTEPLUS}"' in create
        proxy.wait_for(rf'"task_id":"{task_id}".*"task_status":"succeeded"')
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        proxy.stop()
