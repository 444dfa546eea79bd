"""The addons on mitmproxy's own test flows (taddons/tflow): one concern each."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow, tutils

from addons.auth import Auth
from addons.edge import Edge
from addons.failclosed import FailClosed
from addons.ipallow import IpAllow
from addons.metering import Metering
from addons.options import OptionCheck
from addons.relay import Relay
from addons.validation import Validation
from proxy.auth.authenticator import Identity
from proxy.context import METADATA_KEY, RequestContext
from proxy.core import keys
from proxy.core.seedance.catalog import Catalog
from proxy.core.seedance.routes import CREATE, LIST
from proxy.policy import KeyPolicy, OrgPolicy, Snapshot
from proxy.services import EdgeConfig, EdgeServices
from proxy.usage.segment import read_segment
from proxy.usage.spool import Spool

TASKS = "/api/v3/contents/generations/tasks"


def flow(method: str = "GET", path: str = TASKS, body: bytes = b"", **headers: str):
    request = tutils.treq(
        method=method.encode(),
        path=path.encode(),
        headers=http.Headers([(k.encode(), v.encode()) for k, v in headers.items()]),
        content=body,
    )
    f = tflow.tflow(req=request)
    f.client_conn.peername = ("127.0.0.1", 50000)
    return f


def error_of(f: Any) -> dict[str, Any]:
    assert f.response is not None
    return json.loads(f.response.content)["error"]


def identity(**key: Any) -> Identity:
    org = OrgPolicy("org_1", "active")
    return Identity(KeyPolicy("KEYID", "org_1", "active", "$argon2id$x", **key), org)


def with_context(f: Any, route=LIST, ident: Identity | None = None, ip: str = "127.0.0.1"):
    from proxy.core.netaddr import parse_address

    f.metadata[METADATA_KEY] = RequestContext("req_test", route, parse_address(ip))
    f.metadata[METADATA_KEY].identity = ident
    return f


def test_edge_answers_unknown_routes_and_large_bodies_itself() -> None:
    async def scenario() -> None:
        edge = Edge()
        with taddons.context(edge) as tctx:
            tctx.configure(edge, nextapi_max_body_bytes=100)
            unknown = flow("GET", "/api/v3/chat/completions")
            edge.requestheaders(unknown)
            assert unknown.response.status_code == 404
            assert error_of(unknown)["code"] == "NotFound"
            assert unknown.response.headers["X-Request-Id"].startswith("req_")

            declared = flow("POST", TASKS, **{"content-length": "101"})
            edge.requestheaders(declared)
            assert declared.response.status_code == 413

            chunked = flow("POST", TASKS, body=b"x" * 101)
            chunked.request.headers.pop("content-length", None)
            edge.requestheaders(chunked)
            assert chunked.response is None
            edge.request(chunked)
            assert chunked.response.status_code == 413

            ok = flow("GET", TASKS)
            edge.requestheaders(ok)
            edge.request(ok)
            assert ok.response is None
            assert ok.metadata[METADATA_KEY].route == LIST

    asyncio.run(scenario())


def test_edge_records_the_key_id_of_a_parseable_key_only() -> None:
    async def scenario() -> None:
        edge = Edge()
        with taddons.context(edge):
            key, _ = keys.generate_key()
            good = flow(authorization=f"Bearer {key}")
            edge.requestheaders(good)
            assert good.metadata[METADATA_KEY].key_id == keys.parse_key(key).key_id
            junk = flow(authorization="Bearer sk-something")
            edge.requestheaders(junk)
            assert junk.metadata[METADATA_KEY].key_id is None

    asyncio.run(scenario())


def test_edge_options_are_validated_by_the_chains_option_check() -> None:
    async def scenario() -> None:
        edge = Edge()
        with taddons.context(OptionCheck(), edge) as tctx:
            with pytest.raises(exceptions.OptionsError, match="nextapi_trusted_proxies must be"):
                tctx.configure(edge, nextapi_trusted_proxies="10.0.0.0/8,not-an-ip")
            assert edge.trusted_proxies == ()  # the refused value never reached the addon
            with pytest.raises(exceptions.OptionsError, match="nextapi_max_body_bytes must be"):
                tctx.configure(edge, nextapi_max_body_bytes=0)
            tctx.configure(edge, nextapi_trusted_proxies="10.0.0.0/8, ::1")
            assert len(edge.trusted_proxies) == 2

    asyncio.run(scenario())


def test_edge_uses_forwarded_for_only_from_trusted_proxies() -> None:
    async def scenario() -> None:
        edge = Edge()
        with taddons.context(edge) as tctx:
            spoofed = flow(**{"x-forwarded-for": "203.0.113.5"})
            edge.requestheaders(spoofed)
            assert str(spoofed.metadata[METADATA_KEY].client_ip) == "127.0.0.1"
            tctx.configure(edge, nextapi_trusted_proxies="127.0.0.1")
            proxied = flow(**{"x-forwarded-for": "203.0.113.5"})
            edge.requestheaders(proxied)
            assert str(proxied.metadata[METADATA_KEY].client_ip) == "203.0.113.5"

    asyncio.run(scenario())


def test_auth_refuses_and_accepts() -> None:
    async def scenario() -> None:
        key, phc = keys.generate_key()
        key_id = keys.parse_key(key).key_id
        services = EdgeServices()
        services.policy.replace(
            Snapshot.from_wire(
                {
                    "version": 1,
                    "orgs": [{"id": "org_1", "status": "active"}],
                    "keys": [
                        {"id": key_id, "org_id": "org_1", "status": "active", "secret_hash": phc}
                    ],
                }
            )
        )
        auth = Auth(services)
        with taddons.context(auth):
            refused = with_context(flow(authorization="Bearer nope"))
            await auth.requestheaders(refused)
            assert refused.response.status_code == 401
            assert error_of(refused)["code"] == "AuthenticationError"
            accepted = with_context(flow(authorization=f"Bearer {key}"))
            await auth.requestheaders(accepted)
            assert accepted.response is None
            assert accepted.metadata[METADATA_KEY].identity.org.org_id == "org_1"
        services.auth.close()

    asyncio.run(scenario())


def test_ipallow_applies_key_and_org_lists() -> None:
    from proxy.core.netaddr import parse_networks

    addon = IpAllow()
    inside = with_context(flow(), ident=identity(allowed_networks=parse_networks(["127.0.0.0/8"])))
    addon.requestheaders(inside)
    assert inside.response is None
    outside = with_context(flow(), ident=identity(allowed_networks=parse_networks(["10.0.0.0/8"])))
    addon.requestheaders(outside)
    assert outside.response.status_code == 403
    assert error_of(outside)["code"] == "AccessDenied"
    v6 = with_context(
        flow(), ident=identity(allowed_networks=parse_networks(["2001:db8::/32"])), ip="2001:db8::9"
    )
    addon.requestheaders(v6)
    assert v6.response is None


def test_validation_refuses_bad_bodies_and_forbidden_models() -> None:
    services = EdgeServices()
    services.policy.replace(Snapshot(version=1, catalog=Catalog.load()))
    addon = Validation(services)

    def create(model: str, ident: Identity | None = None, **fields: Any) -> Any:
        body = {"model": model, "content": [{"type": "text", "text": "x"}], **fields}
        f = with_context(
            flow("POST", TASKS, json.dumps(body).encode()), route=CREATE, ident=ident or identity()
        )
        addon.request(f)
        return f

    bad = with_context(flow("POST", TASKS, b"{oops"), route=CREATE, ident=identity())
    addon.request(bad)
    assert bad.response.status_code == 400
    limited = identity(models=frozenset({"seedance-1-0-lite-t2v-250428"}))
    assert create("seedance-1-0-pro-250528", limited).response.status_code == 403
    unknown = create("seedance-9-9-ultra-991231")
    assert (unknown.response.status_code, error_of(unknown)["param"]) == (400, "model")
    retired = create("seedance-1-0-lite-t2v-250428")
    assert retired.response.status_code == 404
    assert error_of(retired)["code"] == "InvalidEndpointOrModel.NotFound"
    assert "seedance-1-0-pro-fast-251015" in error_of(retired)["message"]
    too_long = create("dreamina-seedance-2-0-260128", duration=16)
    assert (too_long.response.status_code, error_of(too_long)["param"]) == (400, "duration")
    allowed = create("seedance-1-0-pro-250528")
    assert allowed.response is None
    rctx = allowed.metadata[METADATA_KEY]
    assert rctx.model == "seedance-1-0-pro-250528"
    assert rctx.family is not None and rctx.family.name == "seedance-1-0-pro"


def test_the_services_need_the_upstream_key_and_the_relay_never_relays_unauthenticated() -> None:
    async def scenario() -> None:
        services = EdgeServices()
        with pytest.raises(ValueError, match="NEXTAPI_UPSTREAM_KEY is not set"):
            services.configure(EdgeConfig.from_schema("https://up.example", upstream_key=""))
        assert services.upstream is None
        services.configure(EdgeConfig.from_schema("https://up.example", upstream_key="up"))
        assert services.upstream is not None
        assert services.upstream_origin == "https://up.example:443"
        relay = Relay(services)
        with taddons.context(relay):
            stray = with_context(flow(), ident=None)
            await relay.request(stray)  # an earlier addon failed to authenticate it
            assert stray.response is None  # nothing was sent: FailClosed answers it
        await services.aclose()

    asyncio.run(scenario())


def test_failclosed_answers_what_nobody_answered() -> None:
    addon = FailClosed()
    stray = with_context(flow())
    addon.request(stray)
    assert stray.response.status_code == 500
    assert stray.response.headers["X-Request-Id"] == "req_test"
    without_context = flow()
    addon.request(without_context)
    assert without_context.response.status_code == 500
    answered = with_context(flow())
    answered.response = http.Response.make(200)
    addon.request(answered)
    assert answered.response.status_code == 200


def test_metering_records_durably_for_creates(tmp_path: Path) -> None:
    async def scenario() -> list[dict[str, Any]]:
        services = EdgeServices()
        spool = Spool(tmp_path, flush_interval=5.0)
        await spool.start()
        services.spool = spool
        metering = Metering(services)
        create = with_context(flow("POST", TASKS, b"{}"), route=CREATE, ident=identity())
        create.metadata[METADATA_KEY].key_id = "KEYID"
        create.response = http.Response.make(200, b'{"id":"cgt-1"}')
        await metering.response(create)
        # Durable: on disk now, long before the 5 s flush interval.
        durable = list(read_segment(spool.current_segment))
        anonymous = with_context(flow())  # no parseable key: not recorded
        anonymous.response = http.Response.make(401)
        await metering.response(anonymous)
        await metering.response(create)  # recorded once only
        await spool.close()
        services.auth.close()
        return durable

    (record,) = asyncio.run(scenario())
    assert record["request_id"] == "req_test" and record["org_id"] == "org_1"
    assert record["status"] == 200 and record["bytes_in"] == 2 and record["bytes_out"] == 14
