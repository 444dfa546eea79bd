"""The dev proxy's addons (addons/devmode) on mitmproxy's own test flows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mitmproxy import connection, exceptions, http, tls
from mitmproxy.proxy import context
from mitmproxy.test import taddons, tflow, tutils

from addons.devmode import APP_AUTHORIZATION, CAUGHT, SOURCE
from addons.devmode.cassette import load
from addons.devmode.guard import SeedanceGuard
from addons.devmode.intercept import InterceptHosts
from addons.devmode.recorder import Recorder
from addons.devmode.replayer import Replayer
from addons.devmode.router import TargetRouter
from addons.devmode.settings import parse
from launch.dev import child_env, wireguard_client_conf

SEEDANCE = "ark.ap-southeast.bytepluses.com"
TASKS = "/api/v3/contents/generations/tasks"
HOSTS = f"{SEEDANCE},ark.cn-beijing.volces.com"


def caught_flow(
    method: str = "GET", path: str = TASKS + "/cgt-1", body: bytes = b""
) -> http.HTTPFlow:
    request = tutils.treq(
        method=method.encode(),
        host=SEEDANCE,
        port=443,
        scheme=b"https",
        authority=b"",
        path=path.encode(),
        headers=http.Headers(host=SEEDANCE, authorization="Bearer app-key"),
        content=b"",
    )
    return tflow.tflow(req=request)


def clienthello(sni: str | None, address: tuple[str, int] | None) -> tls.ClientHelloData:
    client = connection.Client(
        peername=("127.0.0.1", 5000), sockname=("127.0.0.1", 8899), timestamp_start=0
    )
    ctx = context.Context(client, None)  # type: ignore[arg-type]
    ctx.server = connection.Server(address=address)

    class Hello:
        pass

    hello = Hello()
    hello.sni = sni  # type: ignore[attr-defined]
    return tls.ClientHelloData(ctx, hello)  # type: ignore[arg-type]


def test_only_the_intercepted_hosts_are_decrypted() -> None:
    intercept = InterceptHosts()
    with taddons.context(intercept) as tctx:
        tctx.configure(intercept, dev_intercept_hosts=HOSTS + ",Extra.Example.")
        other = clienthello("example.com", ("example.com", 443))
        intercept.tls_clienthello(other)
        assert other.ignore_connection
        for sni, address in ((SEEDANCE, None), (None, ("ark.cn-beijing.volces.com", 443))):
            ours = clienthello(sni, address)
            intercept.tls_clienthello(ours)
            assert not ours.ignore_connection
        extra = clienthello("extra.example", None)
        intercept.tls_clienthello(extra)
        assert not extra.ignore_connection

        flow = caught_flow()
        intercept.requestheaders(flow)
        assert flow.metadata[CAUGHT] == SEEDANCE
        elsewhere = tflow.tflow()
        intercept.requestheaders(elsewhere)
        assert CAUGHT not in elsewhere.metadata
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(intercept, dev_intercept_hosts="a.example,,b")


def test_router_sends_to_the_target_with_the_developers_key() -> None:
    router = TargetRouter()
    with taddons.context(router) as tctx:
        tctx.configure(router, dev_target="http://127.0.0.1:7000", dev_target_key="nk_test_k")
        tctx.configure(router, dev_target_is_sim=False)
        flow = caught_flow()
        flow.metadata[CAUGHT] = SEEDANCE
        router.request(flow)
        request = flow.request
        assert (request.scheme, request.host, request.port) == ("http", "127.0.0.1", 7000)
        assert request.headers["host"] == "127.0.0.1:7000"
        assert request.headers["authorization"] == "Bearer nk_test_k"
        assert flow.metadata[APP_AUTHORIZATION] == "Bearer app-key"
        assert flow.metadata[SOURCE] == "target"
        uncaught = tflow.tflow()
        router.request(uncaught)
        assert uncaught.request.host == "address"  # not ours: untouched
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(router, dev_target="ftp://x")


def test_guard_refuses_a_caught_call_not_routed_to_the_target() -> None:
    router, guard = TargetRouter(), SeedanceGuard()
    intercept = InterceptHosts()
    with taddons.context(router, guard, intercept) as tctx:
        tctx.configure(router, dev_target="http://127.0.0.1:7000", dev_intercept_hosts=HOSTS)
        flow = caught_flow()
        flow.metadata[CAUGHT] = SEEDANCE
        guard.request(flow)  # the router never ran: still addressed to Seedance
        assert flow.response is not None and flow.response.status_code == 502
        error = json.loads(flow.response.content)["error"]
        assert error["code"] == "DevProxyNotRouted"
        assert flow.response.headers["x-should-retry"] == "false"

        routed = caught_flow()
        routed.metadata[CAUGHT] = SEEDANCE
        router.request(routed)
        guard.request(routed)
        assert routed.response is None

        # A target that names a Seedance host reaches it: the developer said so.
        tctx.configure(router, dev_target=f"https://{SEEDANCE}")
        named = caught_flow()
        named.metadata[CAUGHT] = SEEDANCE
        router.request(named)
        guard.request(named)
        assert named.response is None and named.request.host == SEEDANCE


def test_replayer_answers_in_order_and_misses_with_501(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    answer = {"method": "GET", "path": TASKS + "/cgt-1", "response": {"status": 200}}
    answer["response"] |= {"headers": [["content-length", "999"], ["x-a", "1"]]}
    answer["response"] |= {"json": {"status": "running"}}
    cassette.write_text('{"nextapi_cassette": 1}\n' + json.dumps(answer) + "\n")
    replayer = Replayer()
    with taddons.context(replayer) as tctx:
        tctx.configure(replayer, dev_replay=str(cassette))
        hit = caught_flow()
        hit.metadata[CAUGHT] = SEEDANCE
        replayer.request(hit)
        assert hit.response is not None and hit.metadata[SOURCE] == "replay"
        assert json.loads(hit.response.content) == {"status": "running"}
        assert hit.response.headers["x-a"] == "1"
        assert hit.response.headers.get("content-length") != "999"

        miss = caught_flow(path=TASKS + "/cgt-2")
        miss.metadata[CAUGHT] = SEEDANCE
        replayer.request(miss)
        assert miss.response is not None and miss.response.status_code == 501
        assert json.loads(miss.response.content)["error"]["code"] == "NotRecorded"

        tctx.configure(replayer, dev_replay_miss="target")
        passed = caught_flow(path=TASKS + "/cgt-3")
        passed.metadata[CAUGHT] = SEEDANCE
        replayer.request(passed)
        assert passed.response is None  # left for the router

        cassette.write_text("garbage\n")
        with pytest.raises(exceptions.OptionsError, match=r"c\.jsonl:1: not valid JSON"):
            tctx.configure(replayer, dev_replay=str(cassette))


def test_recorder_writes_what_the_target_answered(tmp_path: Path) -> None:
    recorder = Recorder()
    path = tmp_path / "out.jsonl"
    with taddons.context(recorder) as tctx:
        tctx.configure(recorder, dev_record=str(path))
        flow = caught_flow()
        flow.metadata |= {
            CAUGHT: SEEDANCE,
            SOURCE: "sim",
            "nextapi_dev.app_path": flow.request.path,
        }
        flow.metadata[APP_AUTHORIZATION] = "Bearer app-key"
        flow.request.headers["authorization"] = "Bearer nk_test_dev_key"
        flow.response = tutils.tresp(content=b'{"status":"queued"}')
        recorder.response(flow)
        replayed = tflow.tflow(resp=True)
        replayed.metadata |= {CAUGHT: SEEDANCE, SOURCE: "replay"}
        recorder.response(replayed)
        recorder.done()
    text = path.read_text()
    assert "app-key" not in text and "nk_test_dev_key" not in text
    (exchange,) = load(path)
    assert exchange.path == TASKS + "/cgt-1" and exchange.host == SEEDANCE
    assert exchange.response.body == b'{"status": "queued"}'


def test_child_env_by_mode(tmp_path: Path) -> None:
    bundle = tmp_path / "b.pem"
    regular = child_env(parse([]), "http://127.0.0.1:1", bundle)
    assert regular["HTTPS_PROXY"] == "http://127.0.0.1:1"
    assert regular["SSL_CERT_FILE"] == str(bundle.resolve())
    for mode in ("local", "wireguard"):
        only_ca = child_env(parse(["--mode", mode]), "http://127.0.0.1:1", bundle)
        assert "HTTPS_PROXY" not in only_ca and "https_proxy" not in only_ca
        assert only_ca["REQUESTS_CA_BUNDLE"] == str(bundle.resolve())


def test_wireguard_client_conf_gets_the_bound_port() -> None:
    conf = "[Interface]\nPrivateKey = k\n\n[Peer]\nEndpoint = 192.0.2.1:0\nAllowedIPs = 0.0.0.0/0"
    fixed = wireguard_client_conf(conf, 51820)
    assert fixed is not None and "Endpoint = 192.0.2.1:51820" in fixed
    assert fixed.replace(":51820", ":0") == conf
    assert wireguard_client_conf(None, 1) is None
