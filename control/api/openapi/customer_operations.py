"""The customer API's operations (`/v1/me…`, a Clerk session's org), described once: most are
the admin API's operation on the customer's org (control/customers/me.py calls its handler),
so they are derived from that description, the `{org}` gone, its links dropped (they name
admin operations); the calls of its own are described here."""

from __future__ import annotations

import dataclasses

from control.api import schemas as s
from control.api.openapi.describe import Op

# The customer's (method, path) -> the admin operation it runs on the customer's org.
SAME_AS_ADMIN = {
    ("GET", "/v1/me/keys"): ("GET", "/v1/orgs/{org}/keys"),
    ("POST", "/v1/me/keys"): ("POST", "/v1/orgs/{org}/keys"),
    ("GET", "/v1/me/keys/{key}"): ("GET", "/v1/keys/{key}"),
    ("DELETE", "/v1/me/keys/{key}"): ("DELETE", "/v1/keys/{key}"),
    ("POST", "/v1/me/keys/{key}/rotate"): ("POST", "/v1/keys/{key}/rotate"),
    ("GET", "/v1/me/balance"): ("GET", "/v1/orgs/{org}/balance"),
    ("GET", "/v1/me/ledger"): ("GET", "/v1/orgs/{org}/ledger"),
    ("GET", "/v1/me/tasks"): ("GET", "/v1/orgs/{org}/tasks"),
    ("GET", "/v1/me/requests"): ("GET", "/v1/orgs/{org}/requests"),
    ("GET", "/v1/me/usage"): ("GET", "/v1/orgs/{org}/usage"),
    ("GET", "/v1/me/webhooks"): ("GET", "/v1/orgs/{org}/webhooks"),
    ("POST", "/v1/me/webhooks"): ("POST", "/v1/orgs/{org}/webhooks"),
    ("GET", "/v1/me/webhooks/{webhook}"): ("GET", "/v1/orgs/{org}/webhooks/{webhook}"),
    ("PATCH", "/v1/me/webhooks/{webhook}"): ("PATCH", "/v1/orgs/{org}/webhooks/{webhook}"),
    ("DELETE", "/v1/me/webhooks/{webhook}"): ("DELETE", "/v1/orgs/{org}/webhooks/{webhook}"),
    ("POST", "/v1/me/webhooks/{webhook}/rotate"): (
        "POST",
        "/v1/orgs/{org}/webhooks/{webhook}/rotate",
    ),
    ("GET", "/v1/me/webhooks/{webhook}/deliveries"): (
        "GET",
        "/v1/orgs/{org}/webhooks/{webhook}/deliveries",
    ),
    ("POST", "/v1/me/webhooks/{webhook}/deliveries/{event}/redeliver"): (
        "POST",
        "/v1/orgs/{org}/webhooks/{webhook}/deliveries/{event}/redeliver",
    ),
    ("GET", "/v1/me/export"): ("GET", "/v1/orgs/{org}/export"),
    ("POST", "/v1/me/checkout"): ("POST", "/v1/orgs/{org}/checkout"),
    ("GET", "/v1/me/payments"): ("GET", "/v1/orgs/{org}/payments"),
    ("GET", "/v1/me/invoices"): ("GET", "/v1/orgs/{org}/invoices"),
    ("GET", "/v1/me/low-balance"): ("GET", "/v1/orgs/{org}/low-balance"),
    ("PUT", "/v1/me/low-balance"): ("PUT", "/v1/orgs/{org}/low-balance"),
}

OWN = {
    ("GET", "/v1/me"): Op("Who is signed in: the user, the organization, the role.", s.Me),
    ("GET", "/v1/me/credit-packs"): Op("The credit packs on sale.", s.CreditPackPage),
    ("PATCH", "/v1/me/keys/{key}"): Op(
        "Change a key of the org (its status is NextAPI's: revoke it instead).",
        s.Key,
        body=s.KeyChanges,
        example={"name": "ci"},
    ),
    ("GET", "/v1/me/settings"): Op(
        "The org's video retention and your analytics choice.", s.Settings
    ),
    ("PATCH", "/v1/me/settings"): Op(
        "Video retention (admins, within the org's bounds); your own analytics opt-out.",
        s.Settings,
        body=s.SettingsPatch,
        example={"analytics_opt_out": True},
    ),
    ("POST", "/v1/me/close"): Op(
        "Close the account (admins): keys stop at once, data deleted within 30 days.",
        s.ClosedOrg,
        body=s.CloseConfirm,
        example={"confirm": "org_5f2c9a0b1d3e4f67"},
    ),
}


def customer_operations(admin: dict[tuple[str, str], Op]) -> dict[tuple[str, str], Op]:
    derived = {
        route: dataclasses.replace(admin[same], links={}, customer=True)
        for route, same in SAME_AS_ADMIN.items()
    }
    own = {route: dataclasses.replace(op, customer=True) for route, op in OWN.items()}
    return derived | own
