"""`run_proxy.py dev`, started as a real process: an unchanged app's Seedance calls caught on
this machine, answered by the simulator or a named target, tailed, recorded and replayed."""

from __future__ import annotations

import datetime
import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook

from tests.e2e.harness import TEXT_CREATE, Gateway, Process, Receiver, Simulator

BYTEPLUS = "ark.ap-southeast.bytepluses.com"
VOLCENGINE = "ark.cn-beijing.volces.com"
TASKS = "/api/v3/contents/generations/tasks"
CHILD = [sys.executable, "tests/e2e/dev_sdk_child.py"]
FAST = ["--queued-seconds", "0.2", "--running-seconds", "0.4"]


def dev(data_dir: Path, *flags: str) -> Process:
    return Process(
        [
            *(sys.executable, "run_proxy.py", "dev", "--listen", "127.0.0.1:0"),
            *("--data-dir", str(data_dir), *flags),
        ]
    )


class DevProxy:
    """A `dev` process without a command: its address, bundle and secret read from its output."""

    def __init__(self, data_dir: Path, *flags: str) -> None:
        self.process = dev(data_dir, *flags)
        match = self.process.wait_for(r"^dev proxy listening on (\S+):(\d+)$")
        self.url = f"http://{match.group(1)}:{match.group(2)}"
        self.bundle = self.process.wait_for(r"^ca bundle: (.+)$").group(1)
        self.secret = self.process.wait_for(r"^callback secret: (\S+)$").group(1)

    def client(self, **kwargs: object) -> httpx.Client:
        trusted = ssl.create_default_context(cafile=self.bundle)
        return httpx.Client(proxy=self.url, verify=trusted, timeout=10, **kwargs)

    def stop(self) -> int:
        return self.process.stop()


def tail_records(process: Process) -> list[dict]:
    return [
        json.loads(line)
        for line in process.output().splitlines()
        if line.startswith("{") and '"method"' in line
    ]


def run_child(process: Process) -> str:
    """Wait for the child's success and the dev process's exit; the task id."""
    task_id = process.wait_for(r"^succeeded (\S+)$", timeout=60).group(1)
    assert process.proc.wait(30) == 0, process.output()
    return task_id


# --- the official SDKs, no base_url --------------------------------------------------------------


@pytest.mark.parametrize(("sdk", "host"), [("byteplus", BYTEPLUS), ("volcengine", VOLCENGINE)])
def test_sdk_without_base_url_served_by_the_simulator(tmp_path: Path, sdk: str, host: str) -> None:
    process = dev(tmp_path, "--json", *FAST, "--", *CHILD, sdk)
    lines = process.output
    assert process.wait_for(r"^target: ").string.startswith("target: simulator (free")
    assert process.wait_for(r"^host (\S+)$").group(1) == f"https://{host}/api/v3/"
    task_id = run_child(process)
    # The first line printed says what answers; the listener and the bundle are announced.
    first = lines().splitlines()[0]
    assert first.startswith("target: simulator") and "free" in first

    # The --json tail: one object a line, parsed and checked.
    records = tail_records(process)
    create, *polls = records
    assert create["method"] == "POST" and create["route"] == TASKS
    assert create["host"] == host and create["source"] == "sim" and create["status"] == 200
    assert create["model"] == "seedance-1-0-pro-250528" and create["task_id"] == task_id
    assert create["credits"]["reserve"] > 0
    datetime.datetime.fromisoformat(create["time"])
    assert polls and all(p["route"] == TASKS + "/{id}" for p in polls)
    assert all(p["task_id"] == task_id and p["latency_ms"] >= 0 for p in polls)
    assert [p["task_status"] for p in polls][-1] == "succeeded"
    assert {p["task_status"] for p in polls} <= {"queued", "running", "succeeded"}
    charged = polls[-1]["credits"]["charge"]
    assert 0 < charged <= create["credits"]["reserve"]
    assert all(p["credits"] is None for p in polls[:-1])


def test_command_exit_status_and_env(tmp_path: Path) -> None:
    script = (
        "import os, sys; "
        "print('env', os.environ['HTTPS_PROXY'], os.environ['SSL_CERT_FILE'], "
        "os.environ['REQUESTS_CA_BUNDLE'], os.environ['CURL_CA_BUNDLE'], os.environ['NO_PROXY']); "
        "sys.exit(7)"
    )
    process = dev(tmp_path, "--", sys.executable, "-c", script)
    listen = process.wait_for(r"^dev proxy listening on (\S+:\d+)$").group(1)
    bundle = process.wait_for(r"^ca bundle: (.+)$").group(1)
    assert process.proc.wait(30) == 7
    env = process.wait_for(r"^env (.*)$").group(1).split()
    assert env[0] == f"http://{listen}"
    assert env[1] == env[2] == env[3] == bundle
    assert "127.0.0.1" in env[4] and "localhost" in env[4]
    # The bundle is the dev CA then the public roots; the CA is made once per data dir.
    pem = Path(bundle).read_text()
    ca = (tmp_path / "dev" / "mitmproxy" / "mitmproxy-ca-cert.pem").read_text()
    assert pem.startswith(ca.strip()) and pem.count("BEGIN CERTIFICATE") > 100

    exported = subprocess.run(
        [sys.executable, "run_proxy.py", "dev", "env", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "export HTTPS_PROXY=http://127.0.0.1:8899\nexport HTTP_PROXY=" in exported
    assert f"export SSL_CERT_FILE={bundle}" in exported
    assert (tmp_path / "dev" / "mitmproxy" / "mitmproxy-ca-cert.pem").read_text() == ca


def test_listening_beyond_loopback_warns(tmp_path: Path) -> None:
    process = dev(tmp_path, "--listen", "0.0.0.0:0", "--", sys.executable, "-c", "pass")
    process.wait_for(r"^warning: listening on 0\.0\.0\.0, not loopback")
    assert process.proc.wait(30) == 0


# --- other hosts are tunnelled, never decrypted --------------------------------------------------


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTPS server for `localhost` with its own self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "own-cert-server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://localhost:{server.server_address[1]}/", cert_file
    server.shutdown()


def curl(proxy: str, url: str, cacert: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["curl", "-sS", "-v", "--noproxy", "", "-x", proxy, "--cacert", str(cacert), url],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_other_hosts_keep_their_own_certificate(
    tmp_path: Path, https_server: tuple[str, Path]
) -> None:
    url, server_cert = https_server
    proxy = DevProxy(tmp_path / "a")
    try:
        seen = curl(proxy.url, url, server_cert)
        assert seen.returncode == 0, seen.stderr
        assert seen.stdout == "hello"
        assert "own-cert-server" in seen.stderr and "mitmproxy" not in seen.stderr
        # The dev CA could not have vouched for it: the server's own certificate was seen.
        assert curl(proxy.url, url, proxy.bundle).returncode != 0
        # A client that does not trust the dev CA gets a plain TLS verification error.
        untrusted = curl(proxy.url, f"https://{BYTEPLUS}{TASKS}/x", server_cert)
        assert untrusted.returncode == 60, untrusted.stderr
        assert "certificate" in untrusted.stderr
    finally:
        proxy.stop()

    # The same host named with --intercept is decrypted: now the dev CA signs what curl sees.
    caught = DevProxy(tmp_path / "b", "--intercept", "localhost")
    try:
        assert curl(caught.url, url, server_cert).returncode != 0
        through = curl(caught.url, url, caught.bundle)
        assert "issuer: CN=mitmproxy" in through.stderr, through.stderr
    finally:
        caught.stop()


# --- an edge as the target: metered under the developer's key -----------------------------------


def test_edge_target_meters_under_the_developers_key(tmp_path: Path, gateway: Gateway) -> None:
    org = gateway.create_org()
    created = gateway.create_key(org["id"])
    process = dev(
        tmp_path,
        *("--json", "--target", gateway.edge_url, "--key", created["key"]),
        *("--", *CHILD, "byteplus"),
    )
    first = process.wait_for(r"^target: ").string
    assert first.startswith(f"target: {gateway.edge_url} COSTS MONEY")
    assert created["key"] not in first
    task_id = run_child(process)
    assert created["key"] not in process.output()

    records = gateway.wait_for_records(org["id"], 3)
    assert records, "nothing metered"
    assert {r["key_id"] for r in records} == {created["id"]}
    creates = [r for r in records if r["method"] == "POST"]
    assert len(creates) == 1 and creates[0]["task_id"] == task_id
    assert creates[0]["status"] == 200
    assert all(r["source"] == "target" for r in tail_records(process))


# --- cassettes: record, then replay with the target stopped --------------------------------------


def test_record_then_replay_with_the_target_stopped(tmp_path: Path) -> None:
    sim = Simulator(*FAST)
    cassette = tmp_path / "calls.jsonl"
    try:
        recording = dev(
            tmp_path / "rec",
            *("--target", sim.url, "--key", sim.api_key, "--record", str(cassette)),
            *("--", *CHILD, "volcengine"),
        )
        recorded_id = run_child(recording)
    finally:
        sim.stop()
    text = cassette.read_text()
    assert sim.api_key not in text and "app-own-key-not-used" not in text
    assert '"authorization","[redacted]"' in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0] == {"nextapi_cassette": 1}
    assert lines[1]["method"] == "POST" and lines[1]["response"]["json"]["id"] == recorded_id
    assert lines[-1]["response"]["json"]["status"] == "succeeded"

    # The simulator is gone: every answer now comes from the cassette, in order.
    replaying = dev(
        tmp_path / "rep",
        *("--json", "--target", sim.url, "--replay", str(cassette)),
        *("--", *CHILD, "volcengine"),
    )
    assert run_child(replaying) == recorded_id
    tail = tail_records(replaying)
    assert {r["source"] for r in tail} == {"replay"}
    assert tail[-1]["task_status"] == "succeeded"
    recorded_polls = len(lines) - 2
    assert len(tail) - 1 <= recorded_polls  # polls moved through the states, none missed

    # A poll past the end holds the last state; a call never recorded is a clear 501.
    proxy = DevProxy(tmp_path / "rep", "--replay", str(cassette))
    try:
        with proxy.client() as client:
            url = f"https://{VOLCENGINE}{TASKS}/{recorded_id}"
            states = [client.get(url).json()["status"] for _ in range(recorded_polls + 2)]
            assert states[0] == "queued" and states[-3:] == ["succeeded"] * 3
            missed = client.get(f"https://{VOLCENGINE}{TASKS}/cgt-never-recorded")
        assert missed.status_code == 501
        error = missed.json()["error"]
        assert error["code"] == "NotRecorded" and str(cassette) in error["message"]
    finally:
        proxy.stop()


def test_corrupt_cassette_refused_at_start_naming_file_and_line(tmp_path: Path) -> None:
    cassette = tmp_path / "bad.jsonl"
    good = {"method": "GET", "path": TASKS + "/t", "response": {"status": 200, "json": {}}}
    cassette.write_text(
        '{"nextapi_cassette": 1}\n' + json.dumps(good) + '\n{"method": "GET", "path": \n'
    )
    refused = subprocess.run(
        [
            *(sys.executable, "run_proxy.py", "dev", "--data-dir", str(tmp_path)),
            *("--listen", "127.0.0.1:0", "--replay", str(cassette)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2
    assert f"{cassette}:3: not valid JSON" in refused.stderr
    assert "dev proxy listening" not in refused.stdout


# --- callbacks: signed with the dev secret, forwarded, verified ----------------------------------


def test_callbacks_signed_with_the_dev_secret(tmp_path: Path) -> None:
    receiver, forwarded = Receiver(), Receiver()
    proxy = DevProxy(tmp_path, "--json", *FAST)
    try:
        with proxy.client() as client:
            body = {**TEXT_CREATE, "callback_url": receiver.url}
            task_id = client.post(f"https://{BYTEPLUS}{TASKS}", json=body).json()["id"]
        receiver.wait(
            lambda: any(p["status"] == "succeeded" for _, p in receiver.events(task_id)),
            "the local callback_url got the task's end",
        )
        webhook = Webhook(proxy.secret)
        statuses = []
        for headers, raw in receiver.deliveries:
            payload = webhook.verify(raw, headers)
            assert payload["id"] == task_id
            statuses.append(payload["status"])
        assert statuses[-1] == "succeeded" and statuses[0] in ("queued", "running")
        assert len(statuses) == len(set(statuses))  # every change once
        secret = proxy.secret
    finally:
        proxy.stop()

    # The secret stays with the data dir; --forward-callbacks-to takes every caught task.
    again = DevProxy(tmp_path, *FAST, "--forward-callbacks-to", forwarded.url)
    try:
        assert again.secret == secret
        with again.client() as client:
            task_id = client.post(f"https://{VOLCENGINE}{TASKS}", json=TEXT_CREATE).json()["id"]
        forwarded.wait(
            lambda: any(p["status"] == "succeeded" for _, p in forwarded.events(task_id)),
            "the forwarding URL got the task's end",
        )
        for headers, raw in forwarded.deliveries:
            assert Webhook(secret).verify(raw, headers)["id"] == task_id
        tampered = forwarded.deliveries[0]
        with pytest.raises(Exception, match=r"(?i)signature"):
            Webhook(secret).verify(tampered[1] + b" ", tampered[0])
    finally:
        again.stop()
        receiver.close()
        forwarded.close()


def test_bodies_in_the_tail_are_redacted(tmp_path: Path) -> None:
    proxy = DevProxy(tmp_path, "--json", "--bodies", *FAST)
    secret_key = "nk_test_ABCDEFGHIJKLMNOP_" + "s" * 38
    try:
        with proxy.client() as client:
            answer = client.post(
                f"https://{BYTEPLUS}{TASKS}",
                json={**TEXT_CREATE, "api_key": "my-private-key"},
                headers={"Authorization": f"Bearer {secret_key}"},
            )
        assert answer.status_code == 200
        record = proxy.process.wait_for(r'^\{.*"method":"POST"').string
    finally:
        proxy.stop()
    tail = json.loads(record)
    assert tail["request_body"]["api_key"] == "[redacted]"
    assert tail["request_body"]["model"] == TEXT_CREATE["model"]
    assert tail["response_body"] == {"id": answer.json()["id"]}
    assert secret_key not in proxy.process.output()
    assert "my-private-key" not in proxy.process.output()


def test_simulator_faults_are_flags(tmp_path: Path) -> None:
    forced = DevProxy(tmp_path / "a", "--json", "--force-status", "429", "--latency", "150")
    try:
        with forced.client() as client:
            answer = client.post(f"https://{BYTEPLUS}{TASKS}", json=TEXT_CREATE)
        assert answer.status_code == 429
        assert "fixed_status" in answer.json()["error"]["message"]
        record = json.loads(forced.process.wait_for(r'^\{.*"method":"POST"').string)
        assert record["status"] == 429 and record["latency_ms"] >= 150
    finally:
        forced.stop()
    failing = DevProxy(tmp_path / "b", "--fail-rate", "1")
    try:
        with failing.client() as client:
            answer = client.get(f"https://{VOLCENGINE}{TASKS}/cgt-1")
        assert answer.status_code == 500
        assert answer.json()["error"]["code"] == "InternalServiceError"
    finally:
        failing.stop()
