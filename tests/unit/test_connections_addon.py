"""The Connections addon's options, and that it comes with the Edge addon wherever that goes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mitmproxy import connection, exceptions
from mitmproxy.addons.tlsconfig import TlsConfig
from mitmproxy.test import taddons, tflow

from addons.connections import Connections
from addons.edge import Edge
from addons.options import OptionCheck
from launch.settings import connection_timeouts, load
from proxy.connections.http1server import TimeLimits
from tests.e2e.test_tls_e2e import self_signed


def test_the_edge_brings_the_connection_guard_with_it() -> None:
    edge = Edge()
    with taddons.context(edge) as tctx:
        tctx.configure(edge, nextapi_request_header_timeout=3, nextapi_keepalive_timeout=9)
        (guard,) = edge.addons
        assert isinstance(guard, Connections)
        assert guard.limits == TimeLimits(header=3, body=30, keepalive=9)


@pytest.mark.parametrize(
    "option",
    ["nextapi_request_header_timeout", "nextapi_request_body_timeout", "nextapi_keepalive_timeout"],
)
def test_time_limits_must_be_positive(option: str) -> None:
    guard = Connections()
    with taddons.context(OptionCheck(), guard) as tctx:
        with pytest.raises(exceptions.OptionsError, match=f"{option} must be positive"):
            tctx.configure(guard, **{option: 0})
        assert guard.limits == TimeLimits(header=10, body=30, keepalive=75)  # unchanged


def test_tls_with_http2_is_refused_since_the_guard_reads_http1_only(tmp_path: Path) -> None:
    self_signed(tmp_path / "edge.pem")
    guard = Connections()
    with taddons.context(TlsConfig(), guard) as tctx:
        tctx.configure(guard, certs=[f"*={tmp_path / 'edge.pem'}"], http2=False)
        with pytest.raises(exceptions.OptionsError, match="http2=false"):
            tctx.configure(guard, http2=True)


def test_the_settings_default_to_the_documented_limits_and_refuse_zero() -> None:
    settings = load([], environ={})
    assert connection_timeouts(settings) == (10, 30, 75)
    assert connection_timeouts(load([], environ={"NEXTAPI_KEEPALIVE_TIMEOUT": "5"}))[2] == 5
    with pytest.raises(SystemExit, match="`request_body_timeout` must be positive"):
        load([], environ={"NEXTAPI_REQUEST_BODY_TIMEOUT": "0"})


def test_connections_past_the_per_address_cap_are_refused_and_room_comes_back() -> None:
    guard = Connections()
    with taddons.context(guard) as tctx:
        tctx.configure(guard, nextapi_max_connections_per_address=2)

        def client(host: str) -> connection.Client:
            conn = tflow.tclient_conn()
            conn.peername = (host, 40000)
            return conn

        async def run() -> None:
            first, second, third = client("192.0.2.1"), client("192.0.2.1"), client("192.0.2.1")
            for conn in (first, second, third):
                guard.client_connected(conn)
            assert first.error is None and second.error is None
            assert third.error == "too many connections from this address"
            other = client("192.0.2.2")
            guard.client_connected(other)
            assert other.error is None
            guard.client_disconnected(third)  # a refused one gives nothing back
            guard.client_disconnected(first)
            fourth = client("192.0.2.1")
            guard.client_connected(fourth)
            assert fourth.error is None
            for conn in (second, other, fourth):
                guard.client_disconnected(conn)
            assert guard.per_address.open == {} and guard.before_http == {}

        asyncio.run(run())


def test_a_negative_connection_cap_is_refused() -> None:
    guard = Connections()
    with taddons.context(OptionCheck(), guard) as tctx:
        with pytest.raises(exceptions.OptionsError, match="per_address must be >= 0"):
            tctx.configure(guard, nextapi_max_connections_per_address=-1)
