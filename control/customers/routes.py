"""The customer API's routes (`/v1/me…`), listed in one place: a Clerk session's org only,
through the admin API's handlers (control/customers/me.py). Each endpoint has a name, so that
the portal's pages (control/customers/portal/) call exactly these, with the same checks."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from control.aggregates import api as aggregates
from control.api import billing, export, keys, orgs, usage, webhooks
from control.customers import keys as me_keys
from control.customers import me
from control.customers import settings as customer_settings
from control.customers.access import Customer, customer_for
from control.payments import checkout, history, invoices, lowbalance, packs

whoami = me.me
list_keys = me.through(keys.list_keys)
create_key = me.through(keys.create_key, write=True, check=me_keys.creatable)
get_key = me.through(keys.get_key, scope=me.key_scope)
patch_key = me.through(keys.patch_key, write=True, scope=me.key_scope, check=me_keys.changeable)
revoke_key = me.through(keys.revoke_key, write=True, scope=me.key_scope)
rotate_key = me.through(keys.rotate_key, write=True, scope=me.key_scope)
get_balance = me.through(billing.get_balance)
get_ledger = me.through(billing.get_ledger)
list_tasks = me.through(billing.list_tasks)
list_requests = me.through(usage.list_requests)
get_usage = me.through(aggregates.org_usage)
list_webhooks = me.through(webhooks.list_webhooks)
create_webhook = me.through(webhooks.create_webhook, write=True)
get_webhook = me.through(webhooks.get_webhook, scope=me.webhook_scope)
patch_webhook = me.through(webhooks.patch_webhook, write=True, scope=me.webhook_scope)
delete_webhook = me.through(webhooks.delete_webhook, write=True, scope=me.webhook_scope)
rotate_webhook = me.through(webhooks.rotate_webhook, write=True, scope=me.webhook_scope)
list_deliveries = me.through(webhooks.list_deliveries, scope=me.webhook_scope)
redeliver = me.through(webhooks.redeliver, write=True, scope=me.webhook_scope)
get_settings = customer_settings.get_settings
patch_settings = customer_settings.patch_settings
export_org = me.through(export.export_org, write=True)
close_org = me.through(orgs.close_org, write=True, check=me.confirm_close, query=False)


async def return_here(request: Request, customer: Customer, body: dict[str, Any]) -> None:
    """Stripe sends the payer back to the portal's billing page on the host they came from,
    unless the caller named its own pages."""
    for field, url in checkout.portal_return(request).items():
        body.setdefault(field, url)


async def packs_on_sale(request: Request) -> Response:
    """The credit packs on sale."""
    await customer_for(request)
    return await packs.buyable(request)


create_checkout = me.through(checkout.create_checkout, write=True, check=return_here)
list_payments = me.through(history.list_payments)
list_invoices = me.through(invoices.list_invoices)
get_low_balance = me.through(lowbalance.get_low_balance)
put_low_balance = me.through(lowbalance.put_low_balance, write=True)

ROUTES = [
    Route("/v1/me", whoami, methods=["GET"]),
    Route("/v1/me/keys", list_keys, methods=["GET"]),
    Route("/v1/me/keys", create_key, methods=["POST"]),
    Route("/v1/me/keys/{key}", get_key, methods=["GET"]),
    Route("/v1/me/keys/{key}", patch_key, methods=["PATCH"]),
    Route("/v1/me/keys/{key}", revoke_key, methods=["DELETE"]),
    Route("/v1/me/keys/{key}/rotate", rotate_key, methods=["POST"]),
    Route("/v1/me/balance", get_balance, methods=["GET"]),
    Route("/v1/me/ledger", get_ledger, methods=["GET"]),
    Route("/v1/me/tasks", list_tasks, methods=["GET"]),
    Route("/v1/me/credit-packs", packs_on_sale, methods=["GET"]),
    Route("/v1/me/checkout", create_checkout, methods=["POST"]),
    Route("/v1/me/payments", list_payments, methods=["GET"]),
    Route("/v1/me/invoices", list_invoices, methods=["GET"]),
    Route("/v1/me/low-balance", get_low_balance, methods=["GET"]),
    Route("/v1/me/low-balance", put_low_balance, methods=["PUT"]),
    Route("/v1/me/requests", list_requests, methods=["GET"]),
    Route("/v1/me/usage", get_usage, methods=["GET"]),
    Route("/v1/me/webhooks", list_webhooks, methods=["GET"]),
    Route("/v1/me/webhooks", create_webhook, methods=["POST"]),
    Route("/v1/me/webhooks/{webhook}", get_webhook, methods=["GET"]),
    Route("/v1/me/webhooks/{webhook}", patch_webhook, methods=["PATCH"]),
    Route("/v1/me/webhooks/{webhook}", delete_webhook, methods=["DELETE"]),
    Route("/v1/me/webhooks/{webhook}/rotate", rotate_webhook, methods=["POST"]),
    Route("/v1/me/webhooks/{webhook}/deliveries", list_deliveries, methods=["GET"]),
    Route("/v1/me/webhooks/{webhook}/deliveries/{event}/redeliver", redeliver, methods=["POST"]),
    Route("/v1/me/settings", get_settings, methods=["GET"]),
    Route("/v1/me/settings", patch_settings, methods=["PATCH"]),
    Route("/v1/me/export", export_org, methods=["GET"]),
    Route("/v1/me/close", close_org, methods=["POST"]),
]
