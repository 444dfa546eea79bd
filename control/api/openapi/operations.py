"""Every operation of the admin API, described once by (method, path), grouped by resource
(the route table is control/app.py): `Op` and `Param` are in describe.py, and document.py
renders the table. A new route needs one entry here; document() refuses a route
without one and an entry without a route."""

from __future__ import annotations

from control.aggregates.reads import MAX_ROWS, SORTABLE
from control.aggregates.rollup import DIMENSIONS
from control.api import schemas as s
from control.api.openapi.describe import (
    FORMAT,
    FROM,
    MSGPACK,
    PAGE,
    TIME,
    TO,
    ZIP,
    Op,
    Param,
    link,
    listing,
)
from control.api.validate import NO_CONTROL_PATTERN

ORG_LINKS = {
    "GetOrg": link("get_org", org="$response.body#/id"),
    "PatchOrg": link("patch_org", org="$response.body#/id"),
    "CreateKey": link("create_key", org="$response.body#/id"),
    "GrantCredits": link("grant_credits", org="$response.body#/id"),
    "GetBalance": link("get_balance", org="$response.body#/id"),
    "GetLedger": link("get_ledger", org="$response.body#/id"),
    "CreateWebhook": link("create_webhook", org="$response.body#/id"),
    "GetUsage": link("org_usage", org="$response.body#/id"),
    "CloseOrg": link("close_org", org="$response.body#/id"),
}
ORG_EXAMPLE = {
    "name": "Acme",
    "email": "ops@acme.example",
    "rate_limit": {"requests_per_minute": 600},
}
ORG_SEARCH = Param(
    "q", {"type": "string", "maxLength": 200}, "Only orgs whose name or id contains this."
)

KEY_LINKS = {
    "GetKey": link("get_key", key="$response.body#/id"),
    "PatchKey": link("patch_key", key="$response.body#/id"),
    "RotateKey": link("rotate_key", key="$response.body#/id"),
    "RevokeKey": link("revoke_key", key="$response.body#/id"),
}

GROUPS = ["hour", "day", "month", *DIMENSIONS]
USAGE = (
    Param("from", TIME, "Inclusive, RFC 3339 (default: 30 days before `to`)."),
    Param("to", TIME, "Exclusive, RFC 3339 (default: now)."),
    Param(
        "group_by",
        {"type": "string", "examples": ["day,model"]},
        f"Comma-separated, any of: {', '.join(GROUPS)} (at most one time unit).",
    ),
    Param("interval", {"enum": ["hour", "day", "month"]}, "The time bucket."),
    Param("tz", {"type": "string", "examples": ["Europe/Paris"]}, "IANA zone for day/month."),
    Param(
        "percentiles",
        {"enum": ["true", "false"]},
        "`false`: the latency percentiles are left out (null), every other figure the same; "
        "grouped by no more than org, key and model, long windows then answer from lean "
        "rollups, in milliseconds.",
    ),
    Param(
        "sort",
        {"enum": [*SORTABLE, *(f"-{name}" for name in SORTABLE)]},
        "Rows by this counter, ascending, or descending with `-` first; ties by group "
        "(default: by group).",
    ),
    Param(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_ROWS},
        "Only the first rows in order: with `sort`, the top consumers (default: every row).",
    ),
    FORMAT,
)
ALL_USAGE = (
    *USAGE,
    Param(
        "org",
        {"type": "string", "examples": ["org_1a2b3c4d5e6f7a8b,org_0f1e2d3c4b5a6978"]},
        "Only these orgs: ids, comma-separated or repeated (at most 1000).",
    ),
)
AUDIT_FILTERS = tuple(
    Param(name, {"type": "string", "maxLength": 200}, f"Only entries with this {name}.")
    for name in ("action", "actor", "target")
)
SECURITY_FILTERS = tuple(
    Param(name, {"type": "string"}, "Only events with this value.")
    for name in ("client_ip", "key_id", "org_id", "reason")
)

FILTER_TEXT = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_CONTROL_PATTERN}
REQUEST_FILTERS = (
    Param(
        "key_id", {"type": "string", "pattern": "^[A-Za-z0-9]{16}$"}, "Only this key's requests."
    ),
    Param(
        "status",
        {"type": "string", "pattern": "^[1-5]([0-9]{2}|xx)$", "examples": ["404", "5xx"]},
        "Only this status code, or this class of codes.",
    ),
    Param("model", FILTER_TEXT, "Only requests for this model."),
    Param(
        "route",
        FILTER_TEXT | {"examples": ["POST /api/v3/contents/generations/tasks"]},
        "Only this route (a template, as the log shows it).",
    ),
)

TASK_STATUS = Param(
    "status", {"enum": ["queued", "running", "succeeded", "failed", "cancelled", "expired"]}
)

HOOK = {"org": "$response.body#/org_id", "webhook": "$response.body#/id"}
WEBHOOK_LINKS = {
    "GetWebhook": link("get_webhook", **HOOK),
    "PatchWebhook": link("patch_webhook", **HOOK),
    "RotateWebhook": link("rotate_webhook", **HOOK),
    "ListDeliveries": link("list_deliveries", **HOOK),
    "DeleteWebhook": link("delete_webhook", **HOOK),
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
    # --- the system
    # Liveness, readiness and metrics answer without a token: the control plane listens on a
    # private address, and a scraper or a load balancer has no admin token.
    ("GET", "/healthz"): Op("Liveness.", s.Health, public=True),
    ("GET", "/readyz"): Op("Readiness: the database answers.", s.Ready, public=True, errors=(503,)),
    ("GET", "/metrics"): Op("Prometheus metrics.", media="text/plain", public=True),
    ("GET", "/v1/system"): Op(
        "The system: version, policy version, edges heard from (their snapshot version and "
        "spool backlog), Redis as the edges see it, the retention job's last run.",
        s.SystemStatus,
    ),
    # --- orgs
    ("POST", "/v1/orgs"): Op(
        "Create an org.", s.Org, 201, s.OrgCreate, links=ORG_LINKS, example=ORG_EXAMPLE
    ),
    ("GET", "/v1/orgs"): listing("List orgs, oldest first.", s.OrgPage, (*PAGE, ORG_SEARCH)),
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
        query=(Param("purge", {"enum": ["now"]}, "`now`: purge the account data at once."),),
    ),
    ("GET", "/v1/orgs/{org}/export"): Op(
        "Everything held about the org: a zip of JSON and NDJSON files.", media=ZIP
    ),
    # --- API keys
    ("POST", "/v1/orgs/{org}/keys"): Op(
        "Create an API key; its secret is shown this once.",
        s.KeyWithSecret,
        201,
        s.KeyCreate,
        errors=(409,),
        links=KEY_LINKS,
        example={"name": "production", "rate_limit": {"requests_per_minute": 60}},
    ),
    ("GET", "/v1/orgs/{org}/keys"): listing("List the org's keys (never secrets).", s.KeyPage),
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
    # --- what was recorded: requests, usage, audit, security events
    ("GET", "/v1/orgs/{org}/requests"): listing(
        "The request log, newest first; filtered by key, status, model, route and time.",
        s.RequestPage,
        (*REQUEST_FILTERS, FROM, TO, *PAGE),
    ),
    ("GET", "/v1/orgs/{org}/usage"): Op(
        "The org's usage, aggregated.", s.Usage, query=USAGE, csv=True
    ),
    ("GET", "/v1/usage"): Op("Every org's usage, aggregated.", s.Usage, query=ALL_USAGE, csv=True),
    ("GET", "/v1/audit"): listing(
        "Admin actions, newest first.", s.AuditPage, (*AUDIT_FILTERS, FROM, TO, *PAGE)
    ),
    ("GET", "/v1/security-events"): listing(
        "Refused authentications and addresses, newest first.",
        s.SecurityEventPage,
        (*SECURITY_FILTERS, FROM, TO, *PAGE),
    ),
    # --- credits and tasks
    ("POST", "/v1/orgs/{org}/credits"): Op(
        "Grant credits, or refund a task's charge (`task_id`).",
        s.Granted,
        201,
        s.CreditGrant,
        errors=(409,),
        example={"amount": 5_000_000, "reason": "welcome credit"},
    ),
    ("GET", "/v1/orgs/{org}/balance"): Op("Balance: available and reserved.", s.Balance),
    ("GET", "/v1/orgs/{org}/ledger"): listing(
        "Ledger entries, newest first, with the reservations.", s.Ledger
    ),
    ("GET", "/v1/orgs/{org}/tasks"): listing(
        "The org's generation tasks with their cost, newest first.",
        s.TaskPage,
        (*PAGE, TASK_STATUS),
    ),
    # --- payments through Stripe: packs, checkout, payments, invoices, low balance
    ("POST", "/v1/orgs/{org}/checkout"): Op(
        "A Stripe Checkout Session for a credit pack: send the payer to its `url`; the "
        "credits come with Stripe's event that it was paid.",
        s.Checkout,
        201,
        s.CheckoutCreate,
        errors=(404, 409, 502, 503),
        example={"pack": "starter"},
    ),
    ("GET", "/v1/orgs/{org}/payments"): listing(
        "The org's payments (checkouts, auto-recharges), newest first.", s.PaymentPage
    ),
    ("POST", "/v1/orgs/{org}/payments/{payment}/refund"): Op(
        "Refund a paid payment through Stripe, whole or `amount` of it; its credits go when "
        "Stripe reports the refund.",
        s.Refund,
        202,
        s.RefundCreate,
        errors=(404, 409, 502, 503),
        example={"amount": 100, "reason": "requested by the customer"},
    ),
    ("GET", "/v1/orgs/{org}/invoices"): listing(
        "The org's invoices from Stripe, newest first.", s.InvoicePage
    ),
    ("GET", "/v1/orgs/{org}/low-balance"): Op(
        "The low-balance alert's threshold and the auto-recharge.", s.LowBalance
    ),
    ("PUT", "/v1/orgs/{org}/low-balance"): Op(
        "Set the low-balance threshold (null: none), the pack to recharge with, and "
        "`auto_recharge` (charges the card a checkout saved, once per crossing).",
        s.LowBalance,
        body=s.LowBalancePut,
        example={"threshold": 2_000_000, "pack": "starter", "auto_recharge": False},
    ),
    ("GET", "/v1/credit-packs"): Op("Every credit pack, on sale or not.", s.CreditPackPage),
    ("GET", "/v1/credit-packs/{pack}"): Op("Read a credit pack.", s.CreditPack),
    ("PUT", "/v1/credit-packs/{pack}"): Op(
        "Add or replace a credit pack: `credits` (micro-credits) for `amount` minor units "
        "of `currency`.",
        s.CreditPack,
        body=s.CreditPackPut,
        also=(201,),
        example={"credits": 10_000_000, "amount": 1000, "currency": "usd", "active": True},
    ),
    ("DELETE", "/v1/credit-packs/{pack}"): Op(
        "Delete a credit pack; payments made keep its figures.", s.Deleted
    ),
    # --- webhook endpoints and deliveries
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
    ("GET", "/v1/orgs/{org}/webhooks/{webhook}/deliveries"): listing(
        "Delivery attempts, newest first.", s.DeliveryPage
    ),
    ("POST", "/v1/orgs/{org}/webhooks/{webhook}/deliveries/{event}/redeliver"): Op(
        "Send an event again.", s.Redelivered, 202
    ),
    # --- the model catalog
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
    # --- admin tokens
    ("POST", "/v1/admin/tokens"): Op(
        "Create an admin token; it is shown this once.",
        s.AdminTokenCreated,
        201,
        s.AdminTokenCreate,
        links={"RevokeToken": link("revoke_admin_token", token="$response.body#/id")},
        example={"name": "dashboard", "scopes": ["read"]},
    ),
    ("GET", "/v1/admin/tokens"): Op(
        "Who holds access: every admin token, never its secret.", s.AdminTokenPage, query=PAGE
    ),
    ("DELETE", "/v1/admin/tokens/{token}"): Op("Revoke an admin token.", s.Revoked),
    # --- the edge's calls (scope `edge`, msgpack)
    ("GET", "/v1/edge/snapshot"): Op(
        "The policy snapshot for an edge (msgpack); `after` + `wait`: long poll.",
        media=MSGPACK,
        edge=True,
        query=(
            Param("after", {"type": "integer"}, "Wait for a version newer than this."),
            Param("wait", {"type": "number"}, "Seconds to wait (at most 25)."),
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
