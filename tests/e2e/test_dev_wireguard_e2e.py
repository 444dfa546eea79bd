"""`run_proxy.py dev --mode wireguard`: a device with no proxy settings at all, whose only route
is a WireGuard tunnel to the dev proxy, has its Seedance calls caught.

The device is a network namespace on this machine; its WireGuard client is wireguard-go (the
userspace implementation: the kernel here has no WireGuard module), whose UDP socket stays in
the root namespace while its tunnel interface is moved into the device's. Needs root and
Debian's `wireguard-go` and `wireguard-tools` (`wg`); `ip netns exec` gives the device its own
/etc/hosts, so the SDK resolves the Seedance host without DNS.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Process

BYTEPLUS = "ark.ap-southeast.bytepluses.com"


def run(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"


def conf_value(conf: str, name: str) -> str:
    for line in conf.splitlines():
        if line.startswith(f"{name} = "):
            return line.split(" = ", 1)[1]
    raise AssertionError(f"{name} missing from the client config:\n{conf}")


@pytest.fixture
def device(tmp_path: Path) -> Iterator[tuple[str, Process]]:
    """The dev proxy in wireguard mode and a namespace tunnelled to it; yields the namespace."""
    missing = [tool for tool in ("wireguard-go", "wg", "ip") if shutil.which(tool) is None]
    assert not missing, f"this test needs {missing}: apt-get install wireguard-go wireguard-tools"
    suffix = secrets.token_hex(4)
    namespace, interface = f"nxdev{suffix}", f"wgdev{suffix}"
    proxy = Process(
        [
            *(sys.executable, "run_proxy.py", "dev", "--mode", "wireguard", "--json"),
            *("--listen", "127.0.0.1:0", "--data-dir", str(tmp_path)),
            *("--queued-seconds", "0.2", "--running-seconds", "0.4"),
        ]
    )
    hosts_dir = Path("/etc/netns") / namespace
    client: subprocess.Popen[bytes] | None = None
    try:
        proxy.wait_for(r"^dev proxy \(wireguard, udp\) listening on 127\.0\.0\.1:\d+$")
        conf_path = proxy.wait_for(r"^wireguard client config: (.+)$").group(1)
        conf = Path(conf_path).read_text()
        key_file = tmp_path / "client.key"
        key_file.write_text(conf_value(conf, "PrivateKey") + "\n")
        key_file.chmod(0o600)

        run("ip", "netns", "add", namespace)
        hosts_dir.mkdir(parents=True)
        (hosts_dir / "hosts").write_text(f"127.0.0.1 localhost\n192.0.2.10 {BYTEPLUS}\n")
        client = subprocess.Popen(
            ["wireguard-go", "-f", interface],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        socket = Path("/var/run/wireguard") / f"{interface}.sock"
        deadline = time.monotonic() + 10
        while not socket.exists():
            assert client.poll() is None, "wireguard-go exited"
            assert time.monotonic() < deadline, "wireguard-go made no control socket"
            time.sleep(0.05)
        run(
            *("wg", "set", interface, "private-key", str(key_file)),
            *("peer", conf_value(conf, "PublicKey"), "endpoint", conf_value(conf, "Endpoint")),
            *("allowed-ips", "0.0.0.0/0"),
        )
        run("ip", "link", "set", interface, "netns", namespace)
        run("ip", "-n", namespace, "addr", "add", conf_value(conf, "Address"), "dev", interface)
        run("ip", "-n", namespace, "link", "set", interface, "up")
        run("ip", "-n", namespace, "link", "set", "lo", "up")
        run("ip", "-n", namespace, "route", "add", "default", "dev", interface)
        yield namespace, proxy
    finally:
        if client is not None:
            client.terminate()
            client.wait(10)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)
        shutil.rmtree(hosts_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            hosts_dir.parent.rmdir()  # only if no other namespace uses it
        proxy.stop()


def test_wireguard_device_without_proxy_settings_is_caught(device: tuple[str, Process]) -> None:
    namespace, proxy = device
    bundle = proxy.wait_for(r"^ca bundle: (.+)$").group(1)
    # The official SDK, no base_url and no proxy variables: only the CA is given.
    child = Process(
        [
            "ip",
            "netns",
            "exec",
            namespace,
            sys.executable,
            "tests/e2e/dev_sdk_child.py",
            "byteplus",
        ],
        env={"SSL_CERT_FILE": bundle, "HTTPS_PROXY": "", "HTTP_PROXY": "", "ALL_PROXY": ""},
    )
    task_id = child.wait_for(r"^succeeded (\S+)$", timeout=60).group(1)
    assert child.proc.wait(30) == 0
    create = proxy.wait_for(r'^\{.*"method":"POST"').string
    assert f'"task_id":"{task_id}"' in create and f'"host":"{BYTEPLUS}"' in create
    assert '"source":"sim"' in create
    proxy.wait_for(rf'"task_id":"{task_id}".*"task_status":"succeeded"')
