"""The OpenAPI 3.1 document: generated from the route table and the typed shapes, complete for
every operation; and the reference page at /docs, served with its own assets under a CSP that
allows no inline script."""

from __future__ import annotations

import json
import re

import pytest

import control.app
from control.api.openapi import OPERATIONS, document
from tests.unit.conftest import Control, ControlRunner

# What answers without a token, and nothing else: liveness, readiness, metrics.
PUBLIC = {"/healthz", "/readyz", "/metrics"}


def test_only_health_readiness_and_metrics_are_public() -> None:
    assert {path for (_, path), op in OPERATIONS.items() if op.public} == PUBLIC


ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    ]


def test_every_route_is_described_completely() -> None:
    doc = document(control.app.DOCUMENTED_ROUTES)
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["admin"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["admin"]["description"],
    }
    routed = {
        (m, r.path) for r in control.app.DOCUMENTED_ROUTES for m in (r.methods or ()) if m != "HEAD"
    }
    operations = _operations(doc)
    assert {(m, p) for m, p, _ in operations} == routed
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids))
    for method, path, op in operations:
        where = f"{method} {path}"
        declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), where
        assert op["summary"] and op["x-codeSamples"][0]["source"].startswith("curl"), where
        responses = op["responses"]
        success = [code for code in responses if code.startswith("2")]
        # one success, or (a PUT that creates or replaces) 200 and 201 with one body
        assert len(success) == 1 or (method == "PUT" and success == ["200", "201"]), where
        assert len({json.dumps(responses[code], sort_keys=True) for code in success}) == 1, where
        if path in PUBLIC:
            assert op["security"] == [], where
            continue
        customer = path == "/v1/me" or path.startswith("/v1/me/")
        expected = [{"clerkSession": []}, {"clerkCookie": []}] if customer else [{"admin": []}]
        assert op["security"] == expected, where
        assert ("429" in responses) is not customer, where  # the admin tokens' throttle
        for status in ("401", "403"):
            assert responses[status]["content"]["application/json"]["schema"] == ERROR_REF
        if declared:
            assert "404" in responses, where
        if op.get("requestBody") or [p for p in op["parameters"] if p["in"] == "query"]:
            assert "400" in responses, where
        body = op.get("requestBody")
        if body and "application/json" in body["content"]:
            media = body["content"]["application/json"]
            assert media["schema"]["$ref"].startswith("#/components/schemas/"), where
            assert "example" in media, where  # every body comes with an example
    schemas = doc["components"]["schemas"]
    for _, _, op in operations:  # every reference resolves
        for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(op).replace("'", '"')):
            assert ref in schemas, ref


def test_a_route_without_a_description_is_refused() -> None:
    from starlette.routing import Route

    async def extra(request):  # pragma: no cover - never called
        raise AssertionError

    with pytest.raises(LookupError, match="GET /v1/extra"):
        document([*control.app.DOCUMENTED_ROUTES, Route("/v1/extra", extra, methods=["GET"])])
    with pytest.raises(LookupError, match="described but not routed"):
        document(control.app.DOCUMENTED_ROUTES[1:])
    assert ("GET", "/v1/orgs") in OPERATIONS


def test_openapi_json_and_the_docs_page(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        served = await ctl.get("/openapi.json", token=None)
        assert served.status_code == 200
        assert served.json() == document(control.app.DOCUMENTED_ROUTES)
        page = await ctl.get("/docs", token=None)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"  # no inline script, no other origin
        assert directives["default-src"] == "'none'"
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
        assert scripts and all(
            'src="/docs/assets/' in attrs and not inner.strip() for attrs, inner in scripts
        )
        assert "http" not in re.sub(r"<title>.*</title>", "", page.text)  # no CDN
        for asset, kind in [
            ("/docs/assets/swagger-ui/swagger-ui-bundle.js", "javascript"),
            ("/docs/assets/swagger-ui/swagger-ui.css", "text/css"),
            ("/docs/assets/docs.js", "javascript"),
        ]:
            response = await ctl.get(asset, token=None)
            assert response.status_code == 200, asset
            assert kind in response.headers["content-type"], (asset, response.headers)
            assert response.headers["content-security-policy"] == csp
        licence = await ctl.get("/docs/assets/swagger-ui/LICENSE", token=None)
        assert licence.status_code == 200 and "Apache License" in licence.text
        loader = (await ctl.get("/docs/assets/docs.js", token=None)).text
        assert '"/openapi.json"' in loader
        assert (await ctl.get("/docs/assets/../app.py", token=None)).status_code == 404

    control_plane(body)
