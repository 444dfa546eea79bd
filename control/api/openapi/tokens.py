"""The admin token operations (`/v1/admin/tokens…`)."""

from __future__ import annotations

from control.api import schemas as s
from control.api.openapi.describe import PAGE, Op, link

OPERATIONS: dict[tuple[str, str], Op] = {
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
}
