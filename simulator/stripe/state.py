"""The simulator's memory: every object by id, the idempotency cache, the switches."""

from __future__ import annotations

import copy
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from simulator.stripe.errors import no_such

_ALPHABET = string.ascii_letters + string.digits

# Id prefix → the object's name in messages ("No such customer: 'cus_…'").
KINDS = {
    "cus": "customer",
    "cs_test": "checkout.session",
    "pi": "payment_intent",
    "ch": "charge",
    "pm": "payment_method",
    "re": "refund",
    "in": "invoice",
    "dp": "dispute",
}


def new_id(prefix: str) -> str:
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def now() -> int:
    return int(time.time())


def base_object(prefix: str, object_name: str) -> dict[str, Any]:
    """The fields every Stripe object carries."""
    return {"id": new_id(prefix), "object": object_name, "created": now(), "livemode": False}


@dataclass(slots=True)
class IdempotentResult:
    method: str
    path: str
    body: str
    status: int
    content: bytes


@dataclass(slots=True)
class StripeState:
    api_key: str
    webhook_secret: str
    webhook_url: str | None = None
    deliver: bool = True
    declines: bool = False
    public_url: str | None = None
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotent: dict[str, IdempotentResult] = field(default_factory=dict)
    invoice_numbers: int = 0

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        return obj

    def get(self, kind: str, object_id: str, param: str = "id") -> dict[str, Any]:
        """The stored object (not a copy); 404 (or 400 for a parameter) when it is not there."""
        obj = self.objects.get(object_id) if isinstance(object_id, str) else None
        if obj is None or obj["object"] != kind:
            raise no_such(kind, str(object_id), param)
        return obj

    def find(self, object_id: str) -> dict[str, Any] | None:
        return self.objects.get(object_id)

    def count(self, kind: str) -> int:
        return sum(1 for obj in self.objects.values() if obj["object"] == kind)

    def next_invoice_number(self) -> str:
        self.invoice_numbers += 1
        return f"NXT-{self.invoice_numbers:04d}"


def snapshot(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy: events and answers show the object as it was then."""
    return copy.deepcopy(obj)


def expand(state: StripeState, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Stripe's `expand[]`: replace the ids at these dotted paths by the objects they name."""
    result = snapshot(obj)
    for path in paths:
        node: Any = result
        parts = path.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                break
            if depth == len(parts) - 1:
                target = node[part]
                if isinstance(target, str) and (found := state.find(target)) is not None:
                    node[part] = snapshot(found)
            else:
                if isinstance(node[part], str) and (found := state.find(node[part])) is not None:
                    node[part] = snapshot(found)
                node = node[part]
    return result
