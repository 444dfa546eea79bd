"""The system's operations: liveness, readiness, metrics and the system's status."""

from __future__ import annotations

from control.api import schemas as s
from control.api.openapi.describe import Op

OPERATIONS: dict[tuple[str, str], Op] = {
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
}
