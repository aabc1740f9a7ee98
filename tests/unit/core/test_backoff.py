"""Unit tests for writebehind.core.backoff: capped exponential backoff with jitter."""

from __future__ import annotations

import random

import pytest

from writebehind.core.backoff import Backoff, retry


def ceiling(base: float, cap: float, n: int) -> float:
    return min(cap, base * 2**n)


@pytest.mark.parametrize(("base", "cap"), [(0.05, 5.0), (1.0, 30.0), (0.001, 0.01)])
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_delays_stay_within_half_and_full_ceiling(base: float, cap: float, seed: int) -> None:
    backoff = Backoff(base=base, cap=cap, rng=random.Random(seed))
    for n in range(40):
        c = ceiling(base, cap, n)
        delay = backoff.next_delay()
        assert c / 2 <= delay <= c
        assert delay <= cap
    assert backoff.failures == 40


def test_delays_grow_exponentially_until_the_cap() -> None:
    backoff = Backoff(base=0.01, cap=10.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(20)]
    # Each uncapped ceiling doubles, so any delay is at least the previous ceiling's lower
    # half and the lower bound of step n exceeds the upper bound of step n-2.
    for n in range(2, 10):
        assert delays[n] > delays[n - 2]
    assert delays[0] <= 0.01
    assert delays[9] >= 0.01 * 2**9 / 2
    # Capped from 0.01 * 2**10 = 10.24 on.
    assert all(5.0 <= d <= 10.0 for d in delays[10:])


def test_delays_are_jittered() -> None:
    backoff = Backoff(base=1.0, cap=1.0, rng=random.Random(3))
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(0.5 <= d <= 1.0 for d in delays)
    assert len(set(delays)) == len(delays)


def test_same_seed_gives_same_delays_and_other_seed_differs() -> None:
    def run(seed: int) -> list[float]:
        backoff = Backoff(base=0.05, cap=5.0, rng=random.Random(seed))
        return [backoff.next_delay() for _ in range(15)]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_reset_starts_over() -> None:
    backoff = Backoff(base=0.1, cap=100.0, rng=random.Random(0))
    for _ in range(10):
        backoff.next_delay()
    assert backoff.failures == 10
    backoff.reset()
    assert backoff.failures == 0
    assert 0.05 <= backoff.next_delay() <= 0.1
    assert backoff.failures == 1


@pytest.mark.timeout(10)  # an unclamped 2**failures would compute for ages
@pytest.mark.parametrize("failures", [63, 64, 1_000, 10**6, 2**70])
def test_many_failures_do_not_overflow(failures: int) -> None:
    backoff = Backoff(base=0.05, cap=5.0, rng=random.Random(0), failures=failures)
    delay = backoff.next_delay()
    assert 2.5 <= delay <= 5.0
    assert backoff.failures == failures + 1


def test_many_consecutive_failures_do_not_overflow() -> None:
    backoff = Backoff(base=0.05, cap=5.0, rng=random.Random(0))
    for _ in range(5_000):
        delay = backoff.next_delay()
    assert 2.5 <= delay <= 5.0


def test_defaults() -> None:
    backoff = Backoff()
    assert (backoff.base, backoff.cap, backoff.failures) == (0.05, 5.0, 0)
    assert 0.025 <= backoff.next_delay() <= 0.05


# retry: the one retry loop


class Flaky:
    """Fails with ``errors`` in turn, then returns ``"done"``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def tiny() -> Backoff:
    return Backoff(base=0.001, cap=0.002, rng=random.Random(1))


@pytest.mark.anyio
async def test_retry_waits_out_transient_failures() -> None:
    call = Flaky(ConnectionError("down"), ConnectionError("still down"))
    seen: list[tuple[str, float]] = []
    result = await retry(
        call,
        transient=lambda e: isinstance(e, ConnectionError),
        backoff=tiny(),
        on_retry=lambda e, d: seen.append((str(e), d)),
    )
    assert result == "done"
    assert call.calls == 3
    assert [message for message, _ in seen] == ["down", "still down"]
    assert all(0.0005 <= delay <= 0.002 for _, delay in seen)


@pytest.mark.anyio
async def test_retry_raises_anything_else_at_once() -> None:
    call = Flaky(KeyError("a bug"))
    with pytest.raises(KeyError):
        await retry(call, transient=lambda e: isinstance(e, ConnectionError), backoff=tiny())
    assert call.calls == 1


@pytest.mark.anyio
async def test_retry_gives_up_after_its_budget_with_the_last_error() -> None:
    call = Flaky(*(ConnectionError(f"down {i}") for i in range(10_000)))
    with pytest.raises(ConnectionError, match="down"):
        await retry(
            call,
            transient=lambda e: isinstance(e, ConnectionError),
            backoff=tiny(),
            give_up_after=0.02,
        )
    assert 1 < call.calls < 10_000
