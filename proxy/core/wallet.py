"""What the edge asks of the credits ledger on the life of a create. The ledger itself lives in
the control plane (control/store/wallet.py, SQLite); an edge in the same process calls it directly,
an edge apart calls it over HTTP (proxy/remote.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from proxy.core.idempotency import Claim


@dataclass(frozen=True, slots=True)
class Hold:
    request_id: str
    org_id: str
    key_id: str
    amount: int  # micro-credits: the most the task can cost
    model: str
    tier: str
    generate_audio: bool | None = None
    callback_webhook: str | None = None  # the endpoint the create named as its callback_url
    # What the task will be charged at: micro-credits per million tokens, exact (`n` or `n/d`),
    # for its resolution, tier, audio and video input, as the catalog priced them at the create.
    unit_price: str = ""
    resolution: str = ""
    video_input: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str  # InsufficientCredits | SpendLimitExceeded | PaymentDisputed
    message: str


class EventSink(Protocol):
    async def task_status(self, task: dict[str, Any]) -> int: ...


class Wallet(Protocol):
    async def reserve(self, hold: Hold) -> Refusal | None: ...

    async def assign(self, request_id: str, task_id: str) -> None: ...

    async def release(self, request_id: str) -> None: ...

    async def settle(
        self, task_id: str, status: str, completion_tokens: int | None
    ) -> int | None: ...

    async def owner(self, task_id: str) -> str | None: ...

    async def org_tasks(self, org_id: str, since: float, limit: int = 500) -> list[str]: ...

    async def unsettled_tasks(self, limit: int = 1000) -> list[str]: ...

    async def video_deleted(self, task_id: str) -> None:
        """The gateway's copies of the task's video are gone (the task was deleted)."""

    async def idempotency_claim(self, org_id: str, key: str, digest: str, request_id: str) -> Claim:
        """An `Idempotency-Key` of a create: run it (NEW), or answer as before (see Claim)."""

    async def idempotency_finish(
        self, org_id: str, key: str, request_id: str, status: int, body: bytes
    ) -> None: ...

    async def idempotency_release(self, org_id: str, key: str, request_id: str) -> None: ...
