"""The webhook endpoint operations (`/v1/orgs/{org}/webhooks…`) and their deliveries."""

from __future__ import annotations

from control.api import schemas as s
from control.api.openapi.describe import PAGE, Op, link, listing

HOOK = {"org": "$response.body#/org_id", "webhook": "$response.body#/id"}
WEBHOOK_LINKS = {
    "GetWebhook": link("get_webhook", **HOOK),
    "PatchWebhook": link("patch_webhook", **HOOK),
    "RotateWebhook": link("rotate_webhook", **HOOK),
    "ListDeliveries": link("list_deliveries", **HOOK),
    "DeleteWebhook": link("delete_webhook", **HOOK),
}

OPERATIONS: dict[tuple[str, str], Op] = {
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
}
