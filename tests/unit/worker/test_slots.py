"""Unit tests for writebehind.worker.slots: batches wait for a slot and report back."""

from __future__ import annotations

import anyio
import pytest

from tests.support.waiting import wait_until
from writebehind.worker.concurrency import FixedLimit
from writebehind.worker.slots import BatchSlots

pytestmark = pytest.mark.anyio


class Recorded:
    """A limit that keeps what it is told, and can be moved by the test."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.calls: list[tuple[int, int, bool]] = []

    def record(self, started: float, records: int, in_flight: int, *, ok: bool = True) -> int:
        self.calls.append((records, in_flight, ok))
        return self.limit


async def test_no_more_batches_in_flight_than_the_limit() -> None:
    slots = BatchSlots(FixedLimit(2))
    most = 0
    release = anyio.Event()

    async def two_in_flight() -> bool:
        return slots.in_flight == 2

    async def batch() -> None:
        nonlocal most
        async with slots.slot(10):
            most = max(most, slots.in_flight)
            await release.wait()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(batch)
            await wait_until(two_in_flight, timeout=5, message="two batches in flight")
            await anyio.wait_all_tasks_blocked()  # the three others had every chance to enter
            assert slots.in_flight == 2
            release.set()
    assert most == 2 and slots.in_flight == 0


async def test_a_lowered_limit_holds_new_batches_back() -> None:
    limit = Recorded(3)
    slots = BatchSlots(limit)
    async with slots.slot(1), slots.slot(1):
        limit.limit = 1
        entered = anyio.Event()

        async def late() -> None:
            async with slots.slot(1):
                entered.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(late)
            await anyio.wait_all_tasks_blocked()  # it had every chance to enter
            assert not entered.is_set()
            tg.cancel_scope.cancel()
    assert slots.in_flight == 0


async def test_outcomes_are_reported_and_cancellation_is_not() -> None:
    limit = Recorded(4)
    slots = BatchSlots(limit)
    async with slots.slot(7):
        pass
    with pytest.raises(RuntimeError):
        async with slots.slot(8):
            raise RuntimeError("bulk_write failed")
    with anyio.move_on_after(0.01):
        async with slots.slot(9):
            await anyio.sleep(10)
    assert limit.calls == [(7, 1, True), (8, 1, False)]
    assert slots.in_flight == 0
