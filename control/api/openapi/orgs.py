"""The org operations (`/v1/orgs…`), the export of everything held about one included."""

from __future__ import annotations

from control.api import schemas as s
from control.api.openapi.describe import PAGE, ZIP, Op, Param, link, listing

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

OPERATIONS: dict[tuple[str, str], Op] = {
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
}
