"""The customer API's world for end-to-end tests: orgs and people provisioned through
Clerk-shaped webhooks (signed by Svix's library), and clients holding Clerk session tokens
signed by a key the test serves as a JWKS."""

from __future__ import annotations

from typing import Any

import httpx

from tests import clerk_events as ce
from tests.clerk_tokens import SigningKey
from tests.e2e.harness import Gateway

SECRET = ce.signing_secret()


class World:
    def __init__(self, gw: Gateway, key: SigningKey) -> None:
        self.gw, self.key = gw, key
        self.orgs: dict[str, str] = {}  # Clerk org id -> NextAPI org id

    def provision(self, clerk_org: str, people: dict[str, str]) -> str:
        ce.provision(
            self.gw.control_url,
            SECRET,
            clerk_org,
            {u: ("Ada", u, f"{u}@example.com", f"org:{role}") for u, role in people.items()},
        )
        found = self.gw.admin.get("/v1/orgs", params={"q": clerk_org}).json()["items"]
        assert found[0]["external_id"] == clerk_org  # the admin API shows which it is
        self.orgs[clerk_org] = found[0]["id"]
        return found[0]["id"]

    def me(self, user: str, org: str, role: str, **claims: Any) -> httpx.Client:
        """A client of the customer API with `user`'s session token in `org`."""
        token = self.key.sign(sub=user, o={"id": org, "rol": role}, **claims)
        return httpx.Client(
            base_url=self.gw.control_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
