"""What the edge learns about one request as it passes the addon chain (flow.metadata)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from proxy.auth.authenticator import Identity
from proxy.auth.security_marks import SecurityMark
from proxy.core.netaddr import IPAddress
from proxy.core.seedance.catalog import ModelFamily
from proxy.core.seedance.routes import Route
from proxy.seedance.creates import CreateRequest

METADATA_KEY = "nextapi"


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


@dataclass(slots=True)
class RequestContext:
    request_id: str
    route: Route | None
    client_ip: IPAddress | None
    received_at: float = field(default_factory=time.time)  # wall clock, for the record
    started: float = field(default_factory=time.perf_counter)  # for latency
    key_id: str | None = None  # set as soon as the key parses, even if it then fails
    identity: Identity | None = None
    model: str | None = None
    task_id: str | None = None
    credits: int = 0
    upstream_latency_ms: float | None = None
    create: CreateRequest | None = None  # a create's parsed body
    family: ModelFamily | None = None  # the create's model family, as the catalog had it
    holds_slots: bool = False  # a create holding concurrency slots not yet bound or released
    holds_credits: bool = False  # a create holding a credit reservation not yet assigned
    callback_webhook: str | None = None  # the registered endpoint a create named
    idempotency_key: str | None = None  # a create's Idempotency-Key, claimed and not yet settled
    # Set when the edge refuses the request for authentication or access: it then also gets a
    # security event (with the client address), beside the usage record of a parseable key.
    security: SecurityMark | None = None
    # Where an addon deliberately sent the request instead of answering it itself (the
    # loopback video origin, proxy/videos/origin.py): the only destination FailClosed lets pass.
    forwarded_to: tuple[str, int] | None = None
    # Which of the customer's own limits refused it ("key" or "org"): the abuse signal. A
    # refusal by a cap that other customers fill, or the upstream's own 429, leaves it None.
    limited_by: str | None = None
    recorded: bool = False

    @property
    def org_id(self) -> str | None:
        return self.identity.org.org_id if self.identity else None
