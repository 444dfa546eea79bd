"""An edge apart with several control-plane URLs (proxy/control_urls.py, proxy/remote.py): calls
go to the current one and move to the next on a refused connection, a timeout or a 5xx, never on
a 4xx; the move is sticky and logged once. Real loopback HTTP servers, each in a thread."""

from __future__ import annotations

import asyncio
import http.server
import logging
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import msgpack
import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addons.gateway import chain
from addons.standalone import Standalone
from launch.settings import load
from proxy.control_urls import MOST_CONTROL_URLS, ControlPlanes, split_control_urls
from proxy.options import BY_NAME
from proxy.remote import ControlClient
from proxy.services import EdgeServices

TOKEN = "nat_test_failover_token"
SNAPSHOT = {"version": 7, "epoch": "e1"}


class Plane:
    """A control plane on loopback answering `status` to everything (200: msgpack bodies the
    ControlClient reads); with `hang`, it answers nothing until the test ends."""

    def __init__(self, status: int = 200, hang: bool = False) -> None:
        self.status, self.hang = status, hang
        self.calls: list[tuple[str, str]] = []  # (method, path)
        self.released = threading.Event()
        plane = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                plane.answer(self, "GET")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                plane.answer(self, "POST")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serving = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        serving.start()

    def answer(self, handler: http.server.BaseHTTPRequestHandler, method: str) -> None:
        self.calls.append((method, handler.path.split("?")[0]))
        if self.hang:
            self.released.wait(30)
            return
        body = msgpack.packb(self.body(handler.path)) if self.status == 200 else b"{}"
        handler.send_response(self.status)
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    @staticmethod
    def body(path: str) -> Any:
        if path.startswith("/v1/edge/snapshot"):
            return SNAPSHOT
        if path.startswith("/v1/edge/wallet/"):
            return {"result": None}
        if path.startswith("/v1/edge/events"):
            return {"queued": 1}
        return {"stored": True}

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def planes() -> Iterator[list[Plane]]:
    made: list[Plane] = []
    yield made
    for plane in made:
        plane.close()


def plane(planes: list[Plane], status: int = 200, hang: bool = False) -> Plane:
    made = Plane(status, hang)
    planes.append(made)
    return made


def closed_port_url() -> str:
    """A loopback URL nothing listens on (bound, read back, closed): connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run(client: ControlClient, *calls: str) -> list[Any]:
    """The named calls in turn, then the client closed."""

    async def body() -> list[Any]:
        answers = []
        try:
            for call in calls:
                if call == "snapshot":
                    answers.append(await client.snapshot(0, 0))
                elif call == "reserve":
                    answers.append(await client.wallet("reserve", {"request_id": "req_1"}))
                elif call == "usage":
                    answers.append(await client.ship_usage([{"request_id": "req_1"}]))
                elif call == "event":
                    answers.append(await client.event({"id": "task_1", "status": "running"}))
        finally:
            await client.aclose()
        return answers

    return asyncio.run(body())


# --- the option -------------------------------------------------------------------------------


def test_one_url_or_several_are_read_in_order_without_trailing_slashes() -> None:
    assert split_control_urls("http://control:9090/") == ["http://control:9090"]
    assert split_control_urls(" http://a:1 , https://b/base/ ") == ["http://a:1", "https://b/base"]
    assert split_control_urls("") == []
    eight = ",".join(f"http://c{n}" for n in range(MOST_CONTROL_URLS))
    assert len(split_control_urls(eight)) == MOST_CONTROL_URLS
    assert BY_NAME["control_url"].problem(eight) is None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("ftp://control", "URL 1 (ftp://control) is not http"),
        ("http://a,,http://b", "URL 2 is empty"),
        ("http://a,", "URL 2 is empty"),
        ("http://a, control:9090", "URL 2 (control:9090) is not http"),
        ("http://", "URL 1 (http://) is not http"),
        (",".join(["http://c"] * (MOST_CONTROL_URLS + 1)), "9 URLs given"),
    ],
)
def test_a_malformed_list_is_refused_saying_what_is_wrong(value: str, why: str) -> None:
    problem = BY_NAME["control_url"].problem(value)
    assert problem is not None and problem.startswith("must be 1 to 8 http:// or https:// URLs")
    assert why in problem
    with pytest.raises(ValueError, match=re.escape(why)):
        ControlClient(value, TOKEN)


def test_run_proxy_and_mitmdump_refuse_a_malformed_list_in_the_same_words() -> None:
    value = "http://a,,http://b"
    words = re.escape("must be 1 to 8 http:// or https:// URLs, separated by commas (URL 2 is")
    with pytest.raises(SystemExit, match=f"`control_url` {words}"):
        load(["--role", "edge", "--control-url", value], environ={})
    with pytest.raises(SystemExit, match=f"`control_url` {words}"):
        load(["--role", "edge"], environ={"NEXTAPI_CONTROL_URL": value})
    services = EdgeServices()
    with taddons.context(*chain(services, first=(Standalone(services),))) as tctx:
        with pytest.raises(exceptions.OptionsError, match=f"nextapi_control_url {words}"):
            tctx.options.update(nextapi_control_url=value)
    listed = load(["--role", "edge", "--control-url", "http://a:1,https://b"], environ={})
    assert listed.control_url == "http://a:1,https://b"


# --- failing over -----------------------------------------------------------------------------


def test_a_refused_connection_moves_to_the_next_url_for_every_kind_of_call(
    planes: list[Plane], caplog: pytest.LogCaptureFixture
) -> None:
    dead, live = closed_port_url(), plane(planes)
    client = ControlClient(f"{dead},{live.url}", TOKEN)
    with caplog.at_level(logging.WARNING, logger="proxy.control_urls"):
        answers = run(client, "snapshot", "reserve", "usage", "event")
    assert answers == [SNAPSHOT, None, None, 1]
    assert [path for _, path in live.calls] == [
        "/v1/edge/snapshot",
        "/v1/edge/wallet/reserve",
        "/v1/edge/usage",
        "/v1/edge/events",
    ]
    assert client.current_url == live.url
    moves = [r.getMessage() for r in caplog.records]
    assert moves == [f"control plane {dead} failed (ConnectError); moving to {live.url}"]
    assert TOKEN not in caplog.text


def test_a_5xx_moves_on_and_the_move_is_sticky(planes: list[Plane]) -> None:
    unavailable, live = plane(planes, 503), plane(planes)
    client = ControlClient(f"{unavailable.url},{live.url}", TOKEN)
    answers = run(client, "reserve", "snapshot", "usage")
    assert answers == [None, SNAPSHOT, None]
    assert unavailable.calls == [("POST", "/v1/edge/wallet/reserve")]  # once, then passed over
    assert len(live.calls) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 409])
def test_a_4xx_is_an_answer_and_never_moves(planes: list[Plane], status: int) -> None:
    refusing, live = plane(planes, status), plane(planes)
    client = ControlClient(f"{refusing.url},{live.url}", TOKEN)
    with pytest.raises(httpx.HTTPStatusError) as raised:
        run(client, "reserve")
    assert raised.value.response.status_code == status
    assert live.calls == [] and client.current_url == refusing.url


def test_a_timeout_moves_to_the_next_url(planes: list[Plane]) -> None:
    hung, live = plane(planes, hang=True), plane(planes)

    async def body() -> httpx.Response:
        control = ControlPlanes([hung.url, live.url], {}, httpx.Timeout(0.3))
        try:
            return await control.request("POST", "/v1/edge/usage", content=b"")
        finally:
            await control.aclose()

    assert asyncio.run(body()).status_code == 200
    assert hung.calls == [("POST", "/v1/edge/usage")] and live.calls == hung.calls


def test_a_round_of_failures_raises_after_each_url_once_and_comes_back_round(
    planes: list[Plane],
) -> None:
    first, second = plane(planes, 503), plane(planes, 502)
    client = ControlClient(f"{first.url},{second.url}", TOKEN)
    with pytest.raises(httpx.HTTPStatusError) as raised:
        run(client, "usage")
    assert raised.value.response.status_code == 502
    assert len(first.calls) == 1 and len(second.calls) == 1
    assert client.current_url == second.url  # the next call starts there, then goes round
    first.status = 200
    assert run(ControlClient(f"{second.url},{first.url}", TOKEN), "snapshot") == [SNAPSHOT]

    dead = closed_port_url()
    with pytest.raises(httpx.ConnectError):
        run(ControlClient(f"{dead},{closed_port_url()}", TOKEN), "snapshot")


def test_concurrent_calls_failing_on_one_url_move_once(
    planes: list[Plane], caplog: pytest.LogCaptureFixture
) -> None:
    unavailable, live, spare = plane(planes, 503), plane(planes), plane(planes)
    client = ControlClient(f"{unavailable.url},{live.url},{spare.url}", TOKEN)

    async def body() -> list[Any]:
        try:
            return await asyncio.gather(*(client.snapshot(0, 0) for _ in range(5)))
        finally:
            await client.aclose()

    with caplog.at_level(logging.WARNING, logger="proxy.control_urls"):
        assert asyncio.run(body()) == [SNAPSHOT] * 5
    assert client.current_url == live.url and spare.calls == []
    assert len(live.calls) == 5 and len(caplog.records) == 1


def test_one_url_behaves_as_before_no_retry_no_move(
    planes: list[Plane], caplog: pytest.LogCaptureFixture
) -> None:
    unavailable = plane(planes, 503)
    client = ControlClient(unavailable.url + "/", TOKEN)
    with caplog.at_level(logging.WARNING, logger="proxy.control_urls"):
        with pytest.raises(httpx.HTTPStatusError):
            run(client, "reserve")
    assert len(unavailable.calls) == 1 and caplog.records == []
    assert client.current_url == unavailable.url
