"""The admin API's shapes as msgspec Structs: request bodies, responses, the error envelope, one
module per resource (orgs, keys, credits, webhooks, tokens, models, logs, system) on the types in
`common`. Importers use the package: `schemas.OrgCreate`, `schemas.body_of`.

The OpenAPI document (control/api/openapi/) is generated from them, and the tests check every
answer against it (tests/unit/control/test_openapi.py, and schemathesis against a live control
plane). Limits come from the constants the validators use (control/api/validate.py). A body
schema is never stricter than its validator: whatever it calls invalid is refused with a 400,
and the validator may refuse more (an address that is not an IP, a blank name) with its own
message.
"""

from __future__ import annotations

from control.api.schemas.common import (
    Amount,
    Cidrs,
    Email,
    Error,
    ErrorDetail,
    Grant,
    Limit,
    LongText,
    ModelIds,
    RateLimit,
    SpendLimit,
    Text,
    Time,
    body_of,
)
from control.api.schemas.credits import (
    Balance,
    CreditGrant,
    Granted,
    Ledger,
    LedgerEntry,
    Reservation,
    Task,
    TaskPage,
)
from control.api.schemas.keys import Key, KeyCreate, KeyPage, KeyPatch, KeyWithSecret, Rotate
from control.api.schemas.logs import (
    AuditEntry,
    AuditPage,
    RequestPage,
    RequestRecord,
    SecurityEvent,
    SecurityEventPage,
    Usage,
    UsageRow,
)
from control.api.schemas.models import (
    Audio,
    Durations,
    Frames,
    ModelCatalog,
    ModelDeleted,
    ModelFamily,
    ModelFamilyPatch,
    ModelFamilyPut,
    PriceRule,
    ReferenceVideos,
)
from control.api.schemas.orgs import ClosedOrg, InFlight, Org, OrgCreate, OrgPage, OrgPatch
from control.api.schemas.system import Health, Ready, SystemStatus
from control.api.schemas.tokens import (
    AdminToken,
    AdminTokenCreate,
    AdminTokenCreated,
    AdminTokenPage,
    Revoked,
)
from control.api.schemas.webhooks import (
    Deleted,
    Delivery,
    DeliveryPage,
    Redelivered,
    Webhook,
    WebhookCreate,
    WebhookPage,
    WebhookPatch,
    WebhookRotate,
    WebhookWithSecret,
)

__all__ = [
    "AdminToken",
    "AdminTokenCreate",
    "AdminTokenCreated",
    "AdminTokenPage",
    "Amount",
    "Audio",
    "AuditEntry",
    "AuditPage",
    "Balance",
    "Cidrs",
    "ClosedOrg",
    "CreditGrant",
    "Deleted",
    "Delivery",
    "DeliveryPage",
    "Durations",
    "Email",
    "Error",
    "ErrorDetail",
    "Frames",
    "Grant",
    "Granted",
    "Health",
    "InFlight",
    "Key",
    "KeyCreate",
    "KeyPage",
    "KeyPatch",
    "KeyWithSecret",
    "Ledger",
    "LedgerEntry",
    "Limit",
    "LongText",
    "ModelCatalog",
    "ModelDeleted",
    "ModelFamily",
    "ModelFamilyPatch",
    "ModelFamilyPut",
    "ModelIds",
    "Org",
    "OrgCreate",
    "OrgPage",
    "OrgPatch",
    "PriceRule",
    "RateLimit",
    "Ready",
    "Redelivered",
    "ReferenceVideos",
    "RequestPage",
    "RequestRecord",
    "Reservation",
    "Revoked",
    "Rotate",
    "SecurityEvent",
    "SecurityEventPage",
    "SpendLimit",
    "SystemStatus",
    "Task",
    "TaskPage",
    "Text",
    "Time",
    "Usage",
    "UsageRow",
    "Webhook",
    "WebhookCreate",
    "WebhookPage",
    "WebhookPatch",
    "WebhookRotate",
    "WebhookWithSecret",
    "body_of",
]
