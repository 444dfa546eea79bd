"""The shapes of the credit calls: grants and refunds, the balance, the ledger with its
reservations, and the tasks with their cost."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from control.api.schemas.common import Grant, LongText, Time
from control.api.validate import NO_CONTROL_PATTERN


class CreditGrant(Struct, forbid_unknown_fields=True):
    """A grant (`amount`, `reason`), or with `task_id` a refund of that task's charge."""

    amount: Grant | UnsetType = UNSET
    reason: LongText | UnsetType = UNSET
    task_id: Annotated[str, Meta(max_length=128, pattern=NO_CONTROL_PATTERN)] | UnsetType = UNSET


class Balance(Struct):
    available: int
    reserved: int


class Granted(Struct):
    id: int
    balance: Balance
    amount: int | UnsetType = UNSET
    kind: Literal["refund"] | UnsetType = UNSET


class LedgerEntry(Struct):
    id: int
    kind: str
    amount: int
    key_id: str | None
    task_id: str | None
    reason: str | None
    actor: str | None
    created_at: Time


class Reservation(Struct):
    id: str
    key_id: str
    amount: int
    model: str
    tier: str
    generate_audio: bool | None
    task_id: str | None
    status: str
    callback_webhook: str | None
    created_at: Time
    settled_at: Time | None


class Ledger(Struct):
    items: list[LedgerEntry]
    next_cursor: str | None
    reservations: list[Reservation]


class Task(Struct):
    id: str
    key_id: str
    model: str | None
    service_tier: str | None
    status: str
    reserved: int
    charged: int | None
    tokens: int | None
    callback_webhook: str | None
    created_at: Time
    updated_at: Time
    finished_at: Time | None
    video_deleted_at: Time | None


class TaskPage(Struct):
    items: list[Task]
    next_cursor: str | None
