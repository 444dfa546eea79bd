"""The edge's operations (scope `edge`, msgpack): the policy snapshot, usage, events, the wallet."""

from __future__ import annotations

from control.api.openapi.describe import MSGPACK, Op, Param

OPERATIONS: dict[tuple[str, str], Op] = {
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
