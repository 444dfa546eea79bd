"""The dev proxy's plain logic (addons/devmode, beside its addons): cassettes, redaction, the
tail's lines, settings, trust and callback signing; free of mitmproxy."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from addons.devmode import credits, redact, tail_lines, trust
from addons.devmode.callback_relay import is_local_url, load_secret, signed_headers
from addons.devmode.cassette import CassetteError, CassetteWriter, ReplayBook, load
from addons.devmode.settings import SEEDANCE_HOSTS, DevUsageError, parse, parse_target
from addons.devmode.targets import SIM, banner, mask_key
from proxy.core import pricing
from proxy.core.pricing import quote
from proxy.core.seedance.catalog import Catalog
from proxy.seedance.creates import CreateRequest, parse_create

TASKS = "/api/v3/contents/generations/tasks"
KEY = "nk_test_ABCDEFGHIJKLMNOP_" + "s" * 38
CREATE = {
    "model": "seedance-1-0-pro-250528",
    "content": [{"type": "text", "text": "a lighthouse at dusk --rs 480p --dur 2"}],
}

# --- cassettes -----------------------------------------------------------------------------------


def exchange(method: str, path: str, status: int = 200, **body: object) -> str:
    return json.dumps({"method": method, "path": path, "response": {"status": status, **body}})


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


HEADER = '{"nextapi_cassette": 1}'


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (["{nope"], ":1: not valid JSON"),
        (['{"cassette": 2}'], ":1: not a cassette"),
        ([HEADER, exchange("GET", TASKS), "[1, 2"], ":3: not valid JSON"),
        ([HEADER, "[]"], ":2: an exchange must be a JSON object"),
        ([HEADER, '{"method": "GET", "response": {"status": 200}}'], ":2: missing `path`"),
        ([HEADER, exchange("GET", "tasks")], ":2: `path` must start with /"),
        ([HEADER, exchange("GE T", TASKS)], ":2: `method` must be an HTTP method"),
        ([HEADER, exchange("GET", TASKS, status=99)], ":2: `response.status` must be"),
        ([HEADER, exchange("GET", TASKS, status=True)], ":2: `response.status` must be"),
        ([HEADER, exchange("GET", TASKS, base64="%%%")], ":2: response: `base64` is not valid"),
        ([HEADER, exchange("GET", TASKS, json={}, text="x")], ":2: response: a body may be only"),
        (
            [HEADER, exchange("GET", TASKS, headers=[["a"]])],
            ":2: response: `headers` must be a list",
        ),
    ],
)
def test_corrupt_cassettes_name_file_and_line(tmp_path: Path, lines: list[str], error: str) -> None:
    path = write(tmp_path, *lines)
    with pytest.raises(CassetteError) as raised:
        load(path)
    assert str(raised.value).startswith(f"{path}{error}")


def test_missing_and_empty_cassettes(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="no such cassette"):
        load(tmp_path / "absent.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(CassetteError, match=r"empty.jsonl:1: empty file"):
        load(empty)


def test_written_cassette_is_redacted_and_replays_in_order(tmp_path: Path) -> None:
    path = tmp_path / "rec" / "c.jsonl"
    writer = CassetteWriter(path)
    body = json.dumps({**CREATE, "api_key": "private-1"}).encode()
    common = {"host": SEEDANCE_HOSTS[0], "query": ""}
    auth = [("Authorization", f"Bearer {KEY}"), ("X-Api-Key", "private-2"), ("Accept", "*/*")]
    writer.write(
        method="POST",
        path=TASKS,
        request_headers=auth,
        request_body=body,
        status=200,
        response_headers=[("Content-Type", "application/json")],
        response_body=b'{"id": "cgt-1"}',
        **common,
    )
    for state in ("queued", "running", "succeeded"):
        writer.write(
            method="GET",
            path=f"{TASKS}/cgt-1",
            request_headers=auth,
            request_body=b"",
            status=200,
            response_headers=[],
            response_body=json.dumps({"id": "cgt-1", "status": state}).encode(),
            **common,
        )
    writer.write(
        method="GET",
        path="/video.mp4",
        request_headers=[],
        request_body=b"",
        status=200,
        response_headers=[],
        response_body=b"\x00\xff\xfe",
        **common,
    )
    writer.close()

    text = path.read_text()
    for secret in (KEY, "private-1", "private-2"):
        assert secret not in text
    assert '["Authorization","[redacted]"]' in text and '["Accept","*/*"]' in text

    book = ReplayBook(load(path))
    assert book.answer("POST", TASKS + "/", "").body == b'{"id": "cgt-1"}'
    assert book.answer("POST", TASKS, "") is None  # a create is answered once per recording
    states = [json.loads(book.answer("GET", f"{TASKS}/cgt-1", "").body)["status"] for _ in "12345"]
    assert states == ["queued", "running", "succeeded", "succeeded", "succeeded"]
    assert book.answer("GET", "/video.mp4", "").body == b"\x00\xff\xfe"
    assert book.answer("GET", f"{TASKS}/cgt-2", "") is None
    assert book.answer("DELETE", f"{TASKS}/cgt-1", "") is None


# --- redaction -----------------------------------------------------------------------------------


def test_redaction_of_headers_members_and_shapes() -> None:
    assert redact.header_value("Authorization", "Bearer x") == "[redacted]"
    assert redact.header_value("x-goog-api-key", "abc") == "[redacted]"
    assert redact.header_value("Cookie", "a=b") == "[redacted]"
    assert redact.header_value("content-type", "application/json") == "application/json"
    value = {
        "model": "m",
        "secret": "s1",
        "nested": [{"access_token": "t1", "note": f"use {KEY} or Bearer abc.def"}],
        "callback_url": "http://localhost/hook",
        "token": None,
    }
    cleaned = redact.data(value)
    assert cleaned["model"] == "m" and cleaned["secret"] == "[redacted]"
    assert cleaned["nested"][0]["access_token"] == "[redacted]"
    assert cleaned["nested"][0]["note"] == "use [redacted] or [redacted]"
    assert cleaned["callback_url"] == "http://localhost/hook"
    assert cleaned["token"] is None  # nothing to hide
    assert redact.text("whsec_abc+/= rest") == "[redacted] rest"
    assert redact.body(b"\xff\x00") == "<2 bytes>"
    assert redact.body(b"") is None
    assert redact.body(b"plain " + KEY.encode()) == "plain [redacted]"


# --- the tail ------------------------------------------------------------------------------------


def test_tail_prices_a_create_and_a_finished_task() -> None:
    body = json.dumps(CREATE).encode()
    create = tail_lines.Call(
        started=1_700_000_000.25,
        method="POST",
        host=SEEDANCE_HOSTS[0],
        path=TASKS,
        status=200,
        latency_ms=12.34,
        source="sim",
        request_body=body,
        response_body=b'{"id": "cgt-9"}',
    )
    record = tail_lines.entry(create)
    parsed = parse_create(body)
    assert isinstance(parsed, CreateRequest)
    catalog = Catalog.load()
    family = catalog.match(parsed.model)
    assert family is not None
    expected = quote(catalog, family, parsed).amount
    assert record["credits"] == {"reserve": expected, "shown": credits.show(expected)}
    assert record["task_id"] == "cgt-9" and record["model"] == CREATE["model"]
    assert record["time"] == "2023-11-14T22:13:20.250+00:00"
    assert record["route"] == TASKS and record["latency_ms"] == 12.3
    assert "request_body" not in record
    line = tail_lines.text_line(record)
    assert line.startswith("22:13:20.250 POST /api/v3/contents/generations/tasks ")
    assert f"cgt-9 200 12ms reserve {credits.show(expected)} cr [sim]" in line

    done = {"id": "cgt-9", "model": CREATE["model"], "status": "succeeded"}
    done |= {"usage": {"completion_tokens": 100_000}, "service_tier": "default"}
    got = tail_lines.Call(
        started=1_700_000_001,
        method="GET",
        host=SEEDANCE_HOSTS[1],
        path=f"{TASKS}/cgt-9",
        status=200,
        latency_ms=1,
        source="replay",
        request_body=b"",
        response_body=json.dumps(done).encode(),
    )
    record = tail_lines.entry(got, bodies=True)
    family = catalog.match(CREATE["model"])
    assert family is not None
    unit = catalog.unit_price(family, "default", False, family.default_resolution, False)
    charge = pricing.charge(unit, 100_000)
    assert record["credits"]["charge"] == charge
    assert record["route"] == TASKS + "/{id}" and record["task_status"] == "succeeded"
    assert record["response_body"]["usage"] == {"completion_tokens": 100_000}
    assert json.loads(tail_lines.json_line(record)) == record

    queued = tail_lines.entry(
        tail_lines.Call(1, "GET", "h", f"{TASKS}/cgt-9", 200, 1, "sim", b"", b'{"status":"queued"}')
    )
    assert queued["credits"] is None
    refused = tail_lines.entry(
        tail_lines.Call(1, "POST", "h", TASKS, None, 5, "error", error="refused")
    )
    assert refused["status"] is None and "error: refused" in tail_lines.text_line(refused)


def test_credits_shown_as_decimal_credits() -> None:
    assert credits.show(1_234_500) == "1.2345"
    assert credits.show(2_000_000) == "2"
    assert credits.show(7) == "0.000007"
    assert credits.estimate_credits(b"{not json") is None
    assert credits.charged_credits("no-such-model", "default", 10, None) is None


# --- settings, targets, trust --------------------------------------------------------------------


def test_settings_defaults_and_command() -> None:
    settings = parse(["--", "python", "app.py", "--flag"])
    assert settings.command == ["python", "app.py", "--flag"]
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8899)
    assert settings.loopback_only and settings.target is SIM
    assert settings.intercept == SEEDANCE_HOSTS
    assert parse(["env"]).env_only
    more = parse(["--intercept", "API.Example.com", "--intercept", SEEDANCE_HOSTS[0]])
    assert more.intercept == (*SEEDANCE_HOSTS, "api.example.com")
    assert not parse(["--listen", "0.0.0.0:0"]).loopback_only
    assert parse(["--listen", "[::1]:0"]).loopback_only
    assert parse(["--mode", "local:curl,python3"]).local_processes == "curl,python3"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--"], "needs a command"),
        (["--listen", "nowhere"], "HOST:PORT"),
        (["--mode", "socks5"], "--mode must be"),
        (["--mode", "wireguard:x"], "--mode must be"),
        (["--record", "a", "--replay", "b"], "cannot be used together"),
        (["--fail-rate", "1.5"], "--fail-rate"),
        (["--force-status", "200"], "--force-status"),
        (["--latency", "-1"], "--latency"),
        (["--target", "ftp://x"], "--target must be"),
        (["--target", "https://edge.example/?k=1"], "query"),
        (["--key", " "], "--key"),
        (["--forward-callbacks-to", "localhost:9"], "--forward-callbacks-to"),
    ],
)
def test_settings_refuse_bad_input(argv: list[str], message: str) -> None:
    with pytest.raises(DevUsageError, match=message):
        parse(argv)


def test_banner_says_what_costs_money_without_the_secret() -> None:
    assert "free" in banner(SIM, None, SEEDANCE_HOSTS)
    edge = parse_target("https://edge.example.com/")
    line = banner(edge, KEY, SEEDANCE_HOSTS)
    assert line.startswith("target: https://edge.example.com COSTS MONEY")
    assert "nk_test_ABCDEFGHIJKLMNOP_…" in line and "sss" not in line
    real = banner(parse_target(f"https://{SEEDANCE_HOSTS[0]}"), None, SEEDANCE_HOSTS)
    assert "COSTS MONEY" in real and "Seedance itself" in real
    assert mask_key("short-key") == "shor…"


def test_proxy_env_and_bundle(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nDEV\n-----END CERTIFICATE-----\n")
    bundle = trust.write_bundle(ca, tmp_path / "bundle.pem")
    content = bundle.read_text()
    assert content.startswith(ca.read_text()) and content.count("BEGIN CERTIFICATE") > 100
    env = trust.proxy_env("http://127.0.0.1:8899", bundle)
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        assert env[name] == "http://127.0.0.1:8899"
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        assert env[name] == str(bundle.resolve())
    assert env["NO_PROXY"] == "localhost,127.0.0.1,::1"
    lines = trust.export_lines({"A": "x y", "B": "z"}).splitlines()
    assert lines == ["export A='x y'", "export B=z"]


# --- callbacks -----------------------------------------------------------------------------------


def test_dev_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    secret = load_secret(tmp_path / "dev")
    assert secret.startswith("whsec_") and load_secret(tmp_path / "dev") == secret
    mode = os.stat(tmp_path / "dev" / "callback-secret").st_mode
    assert stat.S_IMODE(mode) == 0o600
    (tmp_path / "dev" / "callback-secret").write_text("whsec_***not base64***")
    with pytest.raises(ValueError):
        load_secret(tmp_path / "dev")


def test_signed_headers_verify_with_standard_webhooks(tmp_path: Path) -> None:
    secret = load_secret(tmp_path)
    body = b'{"id":"cgt-1","status":"succeeded"}'
    headers = signed_headers(secret, body)
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(secret).verify(body + b" ", headers)


def test_local_callback_urls() -> None:
    for url in ("http://localhost:3000/h", "http://127.0.0.1/h", "http://[::1]:9/h"):
        assert is_local_url(url)
    assert is_local_url("http://app.localhost/h")
    for url in ("https://example.com/h", "http://10.0.0.5/h", "not a url"):
        assert not is_local_url(url)
