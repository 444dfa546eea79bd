"""The credit operations: grants and refunds, the balance, the ledger, the tasks with their cost."""

from __future__ import annotations

from control.api import schemas as s
from control.api.openapi.describe import PAGE, Op, Param, listing

TASK_STATUS = Param(
    "status", {"enum": ["queued", "running", "succeeded", "failed", "cancelled", "expired"]}
)

OPERATIONS: dict[tuple[str, str], Op] = {
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
}
