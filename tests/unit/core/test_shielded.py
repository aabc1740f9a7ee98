"""Shielded calls with a deadline: the caller stops waiting, the call runs to its end.

Events, not sleeps, decide the order: the call waits on an event the test sets.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

from writebehind.core.shielded import ShieldedCalls

pytestmark = pytest.mark.anyio


class Held:
    """A call that waits for ``release`` and records that it ran to its end."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.finished = False

    async def __call__(self, result: str = "done") -> str:
        self.started.set()
        await self.release.wait()
        self.finished = True
        return result


async def test_the_result_comes_back_within_the_deadline() -> None:
    calls = ShieldedCalls()
    held = Held()
    held.release.set()
    assert await calls.run(held("ok"), within=5.0) == "ok"
    await calls.drain(1.0)
    assert calls.in_flight == 0


async def test_past_the_deadline_the_caller_gets_timeout_and_the_call_runs_on() -> None:
    calls = ShieldedCalls()
    held = Held()
    began = anyio.current_time()
    with pytest.raises(TimeoutError):
        await calls.run(held(), within=0.05)
    assert 0.04 <= anyio.current_time() - began < 1.0
    assert held.started.is_set() and not held.finished
    assert calls.in_flight == 1  # still running, not cancelled
    held.release.set()
    await calls.drain(5.0)
    assert held.finished and calls.in_flight == 0


async def test_a_cancelled_caller_leaves_the_call_running_to_its_end() -> None:
    calls = ShieldedCalls()
    held = Held()
    async with anyio.create_task_group() as tg:
        tg.start_soon(calls.run, held())
        await held.started.wait()
        tg.cancel_scope.cancel()
    assert not held.finished and calls.in_flight == 1
    held.release.set()
    await calls.drain(5.0)
    assert held.finished


async def test_an_outer_deadline_still_cancels_the_caller() -> None:
    calls = ShieldedCalls()
    held = Held()
    with anyio.move_on_after(0.05) as scope:
        await calls.run(held(), within=10.0)
    assert scope.cancelled_caught and not held.finished
    held.release.set()
    await calls.drain(5.0)


async def test_an_error_after_the_deadline_is_dropped_quietly() -> None:
    calls = ShieldedCalls()
    release = asyncio.Event()

    async def fails_late() -> None:
        await release.wait()
        raise ValueError("too late to matter")

    with pytest.raises(TimeoutError):
        await calls.run(fails_late(), within=0.01)
    release.set()
    await calls.drain(5.0)  # no "exception was never retrieved": the error was handled
    assert calls.in_flight == 0


async def test_errors_reach_the_caller() -> None:
    async def fails() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await ShieldedCalls().run(fails(), within=1.0)
