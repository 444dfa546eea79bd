"""The wallet's steps sent again after a timeout, to another control plane on the same database
(an edge failing over: proxy/control_urls.py): each is done once. The two "replicas" are the one
control-plane app behind two URLs; the first does the work and then loses the answer (a read
timeout), so the edge's one call reaches the second too."""

from __future__ import annotations

import dataclasses
import time

import httpx

from proxy.core.idempotency import IN_PROGRESS, NEW
from proxy.core.wallet import Hold
from proxy.remote import ControlClient, RemoteWallet
from tests.unit.conftest import Control, ControlRunner
from tests.unit.control.test_control_misc import record

FIRST, SECOND = "http://replica-a", "http://replica-b"


class AnswerLostAtFirst(httpx.AsyncBaseTransport):
    """Both URLs reach `app`; at FIRST, the request is served and then times out on its way
    back. Counts the calls each URL served."""

    def __init__(self, app: object) -> None:
        self.app = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        self.served = {FIRST: 0, SECOND: 0}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.app.handle_async_request(request)
        origin = f"{request.url.scheme}://{request.url.host}"
        self.served[origin] += 1
        if origin == FIRST:
            await response.aread()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_a_reserve_sent_again_to_another_replica_holds_once(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        assert ctl.app is not None
        org = await ctl.create_org()
        granted = await ctl.post(f"/v1/orgs/{org['id']}/credits", json={"amount": 1500})
        assert granted.status_code == 201, granted.text
        transport = AnswerLostAtFirst(ctl.app)
        client = ControlClient(f"{FIRST},{SECOND}", ctl.token, transport=transport)
        wallet = RemoteWallet(client)
        # 1,000 of 1,500: a second hold of it would be refused for want of credits.
        hold = Hold("req_retried", org["id"], "key_1", 1000, "seedance-1-0-pro-fast", "default")
        try:
            assert await wallet.reserve(hold) is None  # answered by the second replica
            assert transport.served == {FIRST: 1, SECOND: 1}
            assert client.current_url == SECOND
            # Sent again whole (as a retry would): still the one hold, still answered "held".
            answer = await client.wallet("reserve", dataclasses.asdict(hold))
            assert answer is None
        finally:
            await client.aclose()
        holds = await ctl.rows("SELECT id, amount, status FROM reservations")
        assert holds == [{"id": "req_retried", "amount": 1000, "status": "held"}]
        balance = await ctl.app.state.wallet.balance(org["id"])
        assert balance == {"available": 500, "reserved": 1000}
        # Another create's hold of the same size is refused: the first counts once, not twice.
        other = dataclasses.replace(hold, request_id="req_other")
        refused = await ctl.app.state.wallet.reserve(other)
        assert refused is not None and refused.code == "InsufficientCredits"

    control_plane(body)


def test_an_idempotency_claim_sent_again_by_its_request_stays_its_own(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        assert ctl.app is not None
        org = await ctl.create_org()
        transport = AnswerLostAtFirst(ctl.app)
        client = ControlClient(f"{FIRST},{SECOND}", ctl.token, transport=transport)
        wallet = RemoteWallet(client)
        try:
            claim = await wallet.idempotency_claim(org["id"], "key-1", "digest", "req_1")
            assert claim.outcome == NEW and transport.served == {FIRST: 1, SECOND: 1}
            again = await wallet.idempotency_claim(org["id"], "key-1", "digest", "req_2")
            assert again.outcome == IN_PROGRESS  # another create with the key still waits
        finally:
            await client.aclose()

    control_plane(body)


def test_a_usage_batch_and_a_settle_sent_again_count_once(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        assert ctl.app is not None
        org = await ctl.create_org()
        await ctl.post(f"/v1/orgs/{org['id']}/credits", json={"amount": 5000})
        hold = Hold("req_s", org["id"], "key_1", 1000, "seedance-1-0-pro-fast", "default")
        assert await ctl.app.state.wallet.reserve(hold) is None
        await ctl.app.state.wallet.assign("req_s", "cgt-s")
        transport = AnswerLostAtFirst(ctl.app)
        client = ControlClient(f"{FIRST},{SECOND}", ctl.token, transport=transport)
        try:
            charged = await client.wallet(
                "settle", {"task_id": "cgt-s", "status": "succeeded", "completion_tokens": 300}
            )
            assert charged is None  # the first replica charged; the second finds it settled
            assert transport.served == {FIRST: 1, SECOND: 1}
            transport.served[SECOND] = 0
            client.planes.urls.reverse()  # FIRST current again: the batch is sent twice too
            batch = [record("req_s", time.time(), org["id"], task_id="cgt-s")]
            await client.ship_usage(batch)
            assert transport.served == {FIRST: 2, SECOND: 1}
        finally:
            await client.aclose()
        assert (await ctl.app.state.wallet.balance(org["id"]))["available"] == 5000 - 300
        charges = await ctl.rows("SELECT amount FROM ledger WHERE kind='charge'")
        assert charges == [{"amount": -300}]
        logged = await ctl.log_rows("SELECT request_id, task_id FROM usage")
        assert logged == [{"request_id": "req_s", "task_id": "cgt-s"}]

    control_plane(body)
