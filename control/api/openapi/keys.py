"""The API key operations: an org's keys (`/v1/orgs/{org}/keys`) and one key (`/v1/keys/{key}…`)."""

from __future__ import annotations

from control.api import schemas as s
from control.api.openapi.describe import Op, link, listing

KEY_LINKS = {
    "GetKey": link("get_key", key="$response.body#/id"),
    "PatchKey": link("patch_key", key="$response.body#/id"),
    "RotateKey": link("rotate_key", key="$response.body#/id"),
    "RevokeKey": link("revoke_key", key="$response.body#/id"),
}

OPERATIONS: dict[tuple[str, str], Op] = {
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
}
