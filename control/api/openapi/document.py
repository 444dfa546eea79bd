"""The OpenAPI document rendered from the operation table: each route of `routes` with its `Op`,
the error responses every admin call has, the components generated from the msgspec shapes."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import msgspec
from starlette.routing import Route

from control.api import schemas as s
from control.api.openapi.customer_operations import customer_operations
from control.api.openapi.describe import CSV, MSGPACK, Op
from control.api.openapi.operations import OPERATIONS as ADMIN_OPERATIONS

OPERATIONS = ADMIN_OPERATIONS | customer_operations(ADMIN_OPERATIONS)

ERROR = {"$ref": "#/components/schemas/Error"}
ERROR_TEXT = {
    400: "Bad input: the message names the field.",
    401: "No admin token, or an unknown one.",
    403: "The token lacks the scope for this call.",
    429: "Too many wrong admin tokens from this address: a token not verified yet waits.",
    404: "Not found.",
    409: "Conflict with the object's state.",
    502: "Stripe refused the call (the message is Stripe's).",
    503: "Not ready, or a service it needs (Stripe) is not configured or not reachable.",
}
CUSTOMER_ERROR_TEXT = {
    401: "No Clerk session token, or one expired, issued to another app or signed by another key.",
    403: "No active organization, one not provisioned or closed, or a member's write.",
    503: "The customer API is not configured.",
}

_PATH_PARAM = re.compile(r"{(\w+)}")


def _responses(path: str, op: Op) -> dict[str, Any]:
    if op.ok is not None:
        content: dict[str, Any] = {op.media: {"schema": _ref(op.ok)}}
    elif op.media == "application/json":
        content = {}
    else:
        content = {op.media: {"schema": {"type": "string", "contentMediaType": op.media}}}
    if op.csv:
        content[CSV] = {"schema": {"type": "string", "contentMediaType": CSV}}
    success: dict[str, Any] = {"description": op.summary}
    if content:
        success["content"] = content
    if op.links:
        success["links"] = {
            name: {"operationId": target, "parameters": parameters}
            for name, (target, parameters) in op.links.items()
        }
    responses = {str(op.status): success}
    for status in op.also:
        responses[str(status)] = success
    errors = set(op.errors)
    if op.customer:
        errors |= {401, 403, 503}
    elif not op.public:
        errors |= {401, 403, 429}
    if op.query or op.body is not None or op.edge:
        errors.add(400)
    if _PATH_PARAM.search(path):
        errors.add(404)
    for status in sorted(errors):
        texts = CUSTOMER_ERROR_TEXT if op.customer else {}
        responses[str(status)] = {
            "description": texts.get(status, ERROR_TEXT[status]),
            "content": {"application/json": {"schema": ERROR}},
        }
    if op.public and 503 in errors:  # readyz answers its own body when not ready
        responses["503"]["content"] = {"application/json": {"schema": _ref(s.Health)}}
    return responses


def _ref(kind: type) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{kind.__name__}"}


def _operation(method: str, path: str, op: Op, operation_id: str) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(path)
    ]
    parameters += [
        {"name": p.name, "in": "query", "required": p.required, "schema": p.schema}
        | ({"description": p.description} if p.description else {})
        for p in op.query
    ]
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": op.summary,
        "tags": [_tag(path)],
        "parameters": parameters,
        "responses": _responses(path, op),
        "security": _security(op),
        "x-codeSamples": [{"lang": "curl", "source": _curl(method, path, op)}],
    }
    if op.body is not None:
        media: dict[str, Any] = {"schema": _ref(op.body)}
        if op.example is not None:
            media["example"] = op.example
        # A body whose fields are all optional may be left out (an empty PATCH changes nothing).
        required = bool(msgspec.structs.fields(op.body)) and any(
            f.required for f in msgspec.structs.fields(op.body)
        )
        operation["requestBody"] = {"required": required, "content": {"application/json": media}}
    elif op.edge and method == "POST":
        operation["requestBody"] = {
            "required": True,
            "content": {MSGPACK: {"schema": {"type": "string", "contentMediaType": MSGPACK}}},
        }
    return operation


def _security(op: Op) -> list[dict[str, list[str]]]:
    if op.public:
        return []
    if op.customer:
        return [{"clerkSession": []}, {"clerkCookie": []}]
    return [{"admin": []}]


def _tag(path: str) -> str:
    parts = [p for p in path.split("/") if p and not p.startswith("{") and p != "v1"]
    if parts[:1] == ["orgs"] and len(parts) > 1:
        return parts[1]
    return parts[0] if parts else "system"


def _curl(method: str, path: str, op: Op) -> str:
    token = "$CLERK_SESSION_TOKEN" if op.customer else "$NEXTAPI_ADMIN_TOKEN"
    auth = "" if op.public else f' -H "Authorization: Bearer {token}"'
    body = ""
    if op.example is not None:
        body = (
            f" -H 'Content-Type: application/json' -d '{msgspec.json.encode(op.example).decode()}'"
        )
    verb = "" if method == "GET" else f" -X {method}"
    return f"curl{verb} http://127.0.0.1:9090{path}{auth}{body}"


@cache
def _components() -> dict[str, Any]:
    kinds = {op.ok for op in OPERATIONS.values() if op.ok is not None}
    kinds |= {op.body for op in OPERATIONS.values() if op.body is not None}
    kinds |= {s.Error, s.Health}
    _, components = msgspec.json.schema_components(
        sorted(kinds, key=lambda k: k.__name__), ref_template="#/components/schemas/{name}"
    )
    return components


def document(routes: list[Route]) -> dict[str, Any]:
    """The whole document for `routes`; every route must be described in OPERATIONS."""
    paths: dict[str, dict[str, Any]] = {}
    seen = set()
    for route in routes:
        for method in sorted((route.methods or set()) - {"HEAD"}):
            op = OPERATIONS.get((method, route.path))
            if op is None:
                raise LookupError(f"{method} {route.path} is not described in control/api/openapi/")
            seen.add((method, route.path))
            paths.setdefault(route.path, {})[method.lower()] = _operation(
                method, route.path, op, route.endpoint.__name__
            )
    if missing := set(OPERATIONS) - seen:
        raise LookupError(f"described but not routed: {sorted(missing)}")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "NextAPI Edge control plane",
            "version": "1",
            "description": (
                "Admin API of NextAPI Edge, and the customer API (`/v1/me…`, tag `me`: "
                "a Clerk session's organization). JSON in and out; times are RFC 3339 in UTC; "
                "amounts are integers in micro-credits. Errors are "
                '`{"error": {"code", "message"}}`.'
            ),
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": _components(),
            "securitySchemes": {
                "admin": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An admin token (`nat_…`) of scope admin, read or edge.",
                },
                "clerkSession": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Clerk session token (the customer API, `/v1/me…`).",
                },
                "clerkCookie": {"type": "apiKey", "in": "cookie", "name": "__session"},
            },
        },
        "security": [{"admin": []}],
        "paths": paths,
    }
