"""The OpenAPI 3.1 document of the control plane, generated from the route table
(control/app.py) and the typed shapes (control/api/schemas.py).

Each operation is described once below, in OPERATIONS, by (method, path): its summary, query
parameters, request body type, success status and type, the error statuses it can answer
beyond the ones every admin call has (401, 403; 400 with parameters or a body; 404 with path
parameters), and its links. `document()` refuses a route without a description, and a
description without a route, so the two cannot drift apart. To describe a new route: add its
shapes to control/api/schemas.py (or a module of its own) and one `Op(...)` here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec
from starlette.routing import Route

from control.aggregates.reads import MAX_ROWS, SORTABLE
from control.aggregates.rollup import DIMENSIONS
from control.api import schemas as s
from control.api.schemas.system import SystemStatus
from control.api.validate import NO_CONTROL_PATTERN

ERROR = {"$ref": "#/components/schemas/Error"}
MSGPACK, ZIP, CSV = "application/msgpack", "application/zip", "text/csv"
ERROR_TEXT = {
    400: "Bad input: the message names the field.",
    401: "No admin token, or an unknown one.",
    403: "The token lacks the scope for this call.",
    429: "Too many wrong admin tokens from this address: a token not verified yet waits.",
    404: "Not found.",
    409: "Conflict with the object's state.",
    503: "Not ready.",
}


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class Op:
    summary: str
    ok: type | None = None  # the success body's type (None: see `media`)
    status: int = 200
    body: type | None = None
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    media: str = "application/json"  # of the success body
    csv: bool = False  # also answers text/csv (`?format=csv`, `Accept: text/csv`)
    public: bool = False  # no token needed
    edge: bool = False  # the `edge` scope's calls (msgpack)
    links: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    example: dict[str, Any] | None = None  # a request body
    also: tuple[int, ...] = ()  # other success statuses with the same body (PUT: 200 and 201)


def _q(name: str, schema: dict[str, Any], description: str = "") -> Param:
    return Param(name, schema, description)


TIME = {"type": "string", "format": "date-time"}
LIMIT = _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page size (100).")
CURSOR = _q("cursor", {"type": "string", "maxLength": 1024}, "`next_cursor` of the previous page.")
FORMAT = _q("format", {"enum": ["json", "csv"]}, "`csv`: the whole list as CSV.")
FROM = _q("from", TIME, "Inclusive, RFC 3339.")
TO = _q("to", TIME, "Exclusive, RFC 3339.")
PAGE = (LIMIT, CURSOR)
GROUPS = ["hour", "day", "month", *DIMENSIONS]
USAGE = (
    _q("from", TIME, "Inclusive, RFC 3339 (default: 30 days before `to`)."),
    _q("to", TIME, "Exclusive, RFC 3339 (default: now)."),
    _q(
        "group_by",
        {"type": "string", "examples": ["day,model"]},
        f"Comma-separated, any of: {', '.join(GROUPS)} (at most one time unit).",
    ),
    _q("interval", {"enum": ["hour", "day", "month"]}, "The time bucket."),
    _q("tz", {"type": "string", "examples": ["Europe/Paris"]}, "IANA zone for day/month."),
    _q(
        "percentiles",
        {"enum": ["true", "false"]},
        "`false`: the latency percentiles are left out (null), every other figure the same; "
        "grouped by no more than org, key and model, long windows then answer from lean "
        "rollups, in milliseconds.",
    ),
    _q(
        "sort",
        {"enum": [*SORTABLE, *(f"-{name}" for name in SORTABLE)]},
        "Rows by this counter, ascending, or descending with `-` first; ties by group "
        "(default: by group).",
    ),
    _q(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_ROWS},
        "Only the first rows in order: with `sort`, the top consumers (default: every row).",
    ),
    FORMAT,
)
ALL_USAGE = (
    *USAGE,
    _q(
        "org",
        {"type": "string", "examples": ["org_1a2b3c4d5e6f7a8b,org_0f1e2d3c4b5a6978"]},
        "Only these orgs: ids, comma-separated or repeated (at most 1000).",
    ),
)
AUDIT_FILTERS = tuple(
    _q(name, {"type": "string", "maxLength": 200}, f"Only entries with this {name}.")
    for name in ("action", "actor", "target")
)
SECURITY_FILTERS = tuple(
    _q(name, {"type": "string"}, "Only events with this value.")
    for name in ("client_ip", "key_id", "org_id", "reason")
)


FILTER_TEXT = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_CONTROL_PATTERN}
REQUEST_FILTERS = (
    _q("key_id", {"type": "string", "pattern": "^[A-Za-z0-9]{16}$"}, "Only this key's requests."),
    _q(
        "status",
        {"type": "string", "pattern": "^[1-5]([0-9]{2}|xx)$", "examples": ["404", "5xx"]},
        "Only this status code, or this class of codes.",
    ),
    _q("model", FILTER_TEXT, "Only requests for this model."),
    _q(
        "route",
        FILTER_TEXT | {"examples": ["POST /api/v3/contents/generations/tasks"]},
        "Only this route (a template, as the log shows it).",
    ),
)


def _link(operation: str, **parameters: str) -> tuple[str, dict[str, str]]:
    return operation, parameters


ORG_LINKS = {
    "GetOrg": _link("get_org", org="$response.body#/id"),
    "PatchOrg": _link("patch_org", org="$response.body#/id"),
    "CreateKey": _link("create_key", org="$response.body#/id"),
    "GrantCredits": _link("grant_credits", org="$response.body#/id"),
    "GetBalance": _link("get_balance", org="$response.body#/id"),
    "GetLedger": _link("get_ledger", org="$response.body#/id"),
    "CreateWebhook": _link("create_webhook", org="$response.body#/id"),
    "GetUsage": _link("org_usage", org="$response.body#/id"),
    "CloseOrg": _link("close_org", org="$response.body#/id"),
}
KEY_LINKS = {
    "GetKey": _link("get_key", key="$response.body#/id"),
    "PatchKey": _link("patch_key", key="$response.body#/id"),
    "RotateKey": _link("rotate_key", key="$response.body#/id"),
    "RevokeKey": _link("revoke_key", key="$response.body#/id"),
}
HOOK = {"org": "$response.body#/org_id", "webhook": "$response.body#/id"}
WEBHOOK_LINKS = {
    "GetWebhook": _link("get_webhook", **HOOK),
    "PatchWebhook": _link("patch_webhook", **HOOK),
    "RotateWebhook": _link("rotate_webhook", **HOOK),
    "ListDeliveries": _link("list_deliveries", **HOOK),
    "DeleteWebhook": _link("delete_webhook", **HOOK),
}
ORG_EXAMPLE = {
    "name": "Acme",
    "email": "ops@acme.example",
    "rate_limit": {"requests_per_minute": 600},
}

FAMILY_EXAMPLE = {
    "ids": ["dreamina-seedance-3-0-270101"],
    "resolutions": {"720p": {"16:9": [1280, 720], "9:16": [720, 1280]}},
    "default_resolution": "720p",
    "durations": {"min": 4, "max": 20, "default": 5, "auto": True},
    "audio": {"supported": True, "default": True},
    "prices": [{"usd_per_million_tokens": "9"}],
}

OPERATIONS: dict[tuple[str, str], Op] = {
    # Liveness, readiness and metrics answer without a token: the control plane listens on a
    # private address, and a scraper or a load balancer has no admin token.
    ("GET", "/healthz"): Op("Liveness.", s.Health, public=True),
    ("GET", "/readyz"): Op("Readiness: the database answers.", s.Ready, public=True, errors=(503,)),
    ("GET", "/metrics"): Op("Prometheus metrics.", media="text/plain", public=True),
    ("POST", "/v1/orgs"): Op(
        "Create an org.", s.Org, 201, s.OrgCreate, links=ORG_LINKS, example=ORG_EXAMPLE
    ),
    ("GET", "/v1/orgs"): Op(
        "List orgs, oldest first.",
        s.OrgPage,
        query=(
            *PAGE,
            _q(
                "q",
                {"type": "string", "maxLength": 200},
                "Only orgs whose name or id contains this.",
            ),
            FORMAT,
        ),
        csv=True,
    ),
    ("GET", "/v1/orgs/{org}"): Op("Read an org.", s.Org),
    ("PATCH", "/v1/orgs/{org}"): Op(
        "Correct an org (name, email, limits, retention, allowlist, status).",
        s.Org,
        body=s.OrgPatch,
        errors=(409,),
        example={"email": "billing@acme.example"},
    ),
    ("DELETE", "/v1/orgs/{org}"): Op(
        "Close the account: keys stop at once, data purged after the closure period.",
        s.ClosedOrg,
        query=(_q("purge", {"enum": ["now"]}, "`now`: purge the account data at once."),),
    ),
    ("POST", "/v1/orgs/{org}/keys"): Op(
        "Create an API key; its secret is shown this once.",
        s.KeyWithSecret,
        201,
        s.KeyCreate,
        errors=(409,),
        links=KEY_LINKS,
        example={"name": "production", "rate_limit": {"requests_per_minute": 60}},
    ),
    ("GET", "/v1/orgs/{org}/keys"): Op(
        "List the org's keys (never secrets).", s.KeyPage, query=(*PAGE, FORMAT), csv=True
    ),
    ("GET", "/v1/orgs/{org}/requests"): Op(
        "The request log, newest first; filtered by key, status, model, route and time.",
        s.RequestPage,
        query=(*REQUEST_FILTERS, FROM, TO, *PAGE, FORMAT),
        csv=True,
    ),
    ("GET", "/v1/orgs/{org}/usage"): Op(
        "The org's usage, aggregated.", s.Usage, query=USAGE, csv=True
    ),
    ("GET", "/v1/usage"): Op("Every org's usage, aggregated.", s.Usage, query=ALL_USAGE, csv=True),
    ("POST", "/v1/orgs/{org}/credits"): Op(
        "Grant credits, or refund a task's charge (`task_id`).",
        s.Granted,
        201,
        s.CreditGrant,
        errors=(409,),
        example={"amount": 5_000_000, "reason": "welcome credit"},
    ),
    ("GET", "/v1/orgs/{org}/balance"): Op("Balance: available and reserved.", s.Balance),
    ("GET", "/v1/orgs/{org}/ledger"): Op(
        "Ledger entries, newest first, with the reservations.",
        s.Ledger,
        query=(*PAGE, FORMAT),
        csv=True,
    ),
    ("GET", "/v1/orgs/{org}/tasks"): Op(
        "The org's generation tasks with their cost, newest first.",
        s.TaskPage,
        query=(
            *PAGE,
            _q(
                "status",
                {"enum": ["queued", "running", "succeeded", "failed", "cancelled", "expired"]},
            ),
            FORMAT,
        ),
        csv=True,
    ),
    ("GET", "/v1/orgs/{org}/export"): Op(
        "Everything held about the org: a zip of JSON and NDJSON files.", media=ZIP
    ),
    ("POST", "/v1/orgs/{org}/webhooks"): Op(
        "Register a webhook endpoint; its secret is shown this once.",
        s.WebhookWithSecret,
        201,
        s.WebhookCreate,
        errors=(409,),
        links=WEBHOOK_LINKS,
        example={"url": "https://hooks.acme.example/nextapi", "events": ["task.succeeded"]},
    ),
    ("GET", "/v1/orgs/{org}/webhooks"): Op(
        "List the org's webhook endpoints.", s.WebhookPage, query=PAGE
    ),
    ("GET", "/v1/orgs/{org}/webhooks/{webhook}"): Op("Read a webhook endpoint.", s.Webhook),
    ("PATCH", "/v1/orgs/{org}/webhooks/{webhook}"): Op(
        "Change the URL or events, or disable/enable.",
        s.Webhook,
        body=s.WebhookPatch,
        example={"status": "disabled"},
    ),
    ("DELETE", "/v1/orgs/{org}/webhooks/{webhook}"): Op("Delete a webhook endpoint.", s.Deleted),
    ("POST", "/v1/orgs/{org}/webhooks/{webhook}/rotate"): Op(
        "A new signing secret; the old one signs beside it for `grace_seconds`.",
        s.WebhookWithSecret,
        body=s.WebhookRotate,
        errors=(409,),
        example={"grace_seconds": 3600},
    ),
    ("GET", "/v1/orgs/{org}/webhooks/{webhook}/deliveries"): Op(
        "Delivery attempts, newest first.", s.DeliveryPage, query=(*PAGE, FORMAT), csv=True
    ),
    ("POST", "/v1/orgs/{org}/webhooks/{webhook}/deliveries/{event}/redeliver"): Op(
        "Send an event again.", s.Redelivered, 202
    ),
    ("GET", "/v1/keys/{key}"): Op("Read a key (never its secret).", s.Key),
    ("PATCH", "/v1/keys/{key}"): Op(
        "Change a key's limits, allowlist, models or status.",
        s.Key,
        body=s.KeyPatch,
        errors=(409,),
        example={"status": "suspended"},
    ),
    ("DELETE", "/v1/keys/{key}"): Op("Revoke a key: refused at the edge within a second.", s.Key),
    ("POST", "/v1/keys/{key}/rotate"): Op(
        "A new secret under the same key id; the old one works for `grace_seconds`.",
        s.KeyWithSecret,
        body=s.Rotate,
        errors=(409,),
        example={"grace_seconds": 600},
    ),
    ("GET", "/v1/models"): Op(
        "The model catalog: every family, and the markup and credits per USD of all prices.",
        s.ModelCatalog,
    ),
    ("GET", "/v1/models/{family}"): Op("Read a model family.", s.ModelFamily),
    ("PUT", "/v1/models/{family}"): Op(
        "Add or replace a model family; live on every edge within a second.",
        s.ModelFamily,
        body=s.ModelFamilyPut,
        also=(201,),
        example=FAMILY_EXAMPLE,
    ),
    ("PATCH", "/v1/models/{family}"): Op(
        "Change fields of a model family: a price, a limit, a retirement.",
        s.ModelFamily,
        body=s.ModelFamilyPatch,
        example={"status": "retired", "retired_at": "2026-12-15", "replacement": "m-2"},
    ),
    ("DELETE", "/v1/models/{family}"): Op(
        "Remove a model family: its models are refused as unknown from then on.",
        s.ModelDeleted,
    ),
    ("GET", "/v1/audit"): Op(
        "Admin actions, newest first.",
        s.AuditPage,
        query=(*AUDIT_FILTERS, FROM, TO, *PAGE, FORMAT),
        csv=True,
    ),
    ("GET", "/v1/security-events"): Op(
        "Refused authentications and addresses, newest first.",
        s.SecurityEventPage,
        query=(*SECURITY_FILTERS, FROM, TO, *PAGE, FORMAT),
        csv=True,
    ),
    ("GET", "/v1/system"): Op(
        "The system: version, policy version, edges heard from (their snapshot version and "
        "spool backlog), Redis as the edges see it, the retention job's last run.",
        SystemStatus,
    ),
    ("POST", "/v1/admin/tokens"): Op(
        "Create an admin token; it is shown this once.",
        s.AdminTokenCreated,
        201,
        s.AdminTokenCreate,
        links={"RevokeToken": _link("revoke_admin_token", token="$response.body#/id")},
        example={"name": "dashboard", "scopes": ["read"]},
    ),
    ("GET", "/v1/admin/tokens"): Op(
        "Who holds access: every admin token, never its secret.", s.AdminTokenPage, query=PAGE
    ),
    ("DELETE", "/v1/admin/tokens/{token}"): Op("Revoke an admin token.", s.Revoked),
    ("GET", "/v1/edge/snapshot"): Op(
        "The policy snapshot for an edge (msgpack); `after` + `wait`: long poll.",
        media=MSGPACK,
        edge=True,
        query=(
            _q("after", {"type": "integer"}, "Wait for a version newer than this."),
            _q("wait", {"type": "number"}, "Seconds to wait (at most 25)."),
        ),
    ),
    ("POST", "/v1/edge/usage"): Op(
        "A batch of usage records from an edge (msgpack).", media=MSGPACK, edge=True
    ),
    ("POST", "/v1/edge/events"): Op(
        "A task's status from an edge, for the webhook outbox (msgpack).", media=MSGPACK, edge=True
    ),
    ("POST", "/v1/edge/wallet/{op}"): Op(
        "One credit-ledger operation for an edge (msgpack).", media=MSGPACK, edge=True
    ),
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
    if not op.public:
        errors |= {401, 403, 429}
    if op.query or op.body is not None or op.edge:
        errors.add(400)
    if _PATH_PARAM.search(path):
        errors.add(404)
    for status in sorted(errors):
        responses[str(status)] = {
            "description": ERROR_TEXT[status],
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
        "security": [] if op.public else [{"admin": []}],
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


def _tag(path: str) -> str:
    parts = [p for p in path.split("/") if p and not p.startswith("{") and p != "v1"]
    if parts[:1] == ["orgs"] and len(parts) > 1:
        return parts[1]
    return parts[0] if parts else "system"


def _curl(method: str, path: str, op: Op) -> str:
    auth = "" if op.public else ' -H "Authorization: Bearer $NEXTAPI_ADMIN_TOKEN"'
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
                raise LookupError(
                    f"{method} {route.path} is not described in control/api/openapi.py"
                )
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
                "Admin API of NextAPI Edge. JSON in and out; times are RFC 3339 in UTC; "
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
                }
            },
        },
        "security": [{"admin": []}],
        "paths": paths,
    }
