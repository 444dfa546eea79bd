"""Background rounds run only where this control plane leads their job."""

from __future__ import annotations

import asyncio

from control.periodic import Periodic


def test_a_round_runs_only_while_this_control_plane_leads_its_job() -> None:
    async def main() -> tuple[list[str], list[int]]:
        asked: list[str] = []
        leading = [False, False, True, False, True]
        ran: list[int] = []
        done = asyncio.Event()

        async def lead(job: str) -> bool:
            asked.append(job)
            leads = leading[len(asked) - 1]
            if len(asked) == len(leading):
                done.set()
            return leads

        async def work() -> None:
            ran.append(len(asked))

        rounds = Periodic("usage rollup", work, lead=lead)
        rounds.start(0)
        await done.wait()
        await rounds.stop()
        return asked, ran

    asked, ran = asyncio.run(main())
    assert set(asked) == {"usage rollup"}
    assert ran == [3, 5]  # the rounds in which it led, and only those


def test_a_failing_leadership_check_is_a_failed_round_tried_again() -> None:
    async def main() -> list[int]:
        ran: list[int] = []
        calls = 0
        done = asyncio.Event()

        async def lead(job: str) -> bool:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ConnectionError("database away")
            return True

        async def work() -> None:
            ran.append(calls)
            done.set()

        rounds = Periodic("retention purge", work, lead=lead)
        rounds.start(0)
        await done.wait()
        await rounds.stop()
        return ran

    assert asyncio.run(main()) == [2]
