"""XFetch's decision, deterministic: injected random numbers, times in seconds."""

from __future__ import annotations

import math

import pytest

from writebehind.sdk.reading.xfetch import should_refresh


def fixed(value: float):  # type: ignore[no-untyped-def]
    return lambda: value


def test_rand_zero_refreshes_instead_of_raising() -> None:
    assert should_refresh(delta=0.01, beta=1.0, time_left=3600, rand=fixed(0.0))


def test_rand_one_never_refreshes_a_live_entry() -> None:
    assert not should_refresh(delta=10, beta=100, time_left=0.001, rand=fixed(1.0))


@pytest.mark.parametrize(
    ("delta", "beta", "rand", "time_left", "expected"),
    [
        # -delta * beta * ln(rand) >= time_left
        (1.0, 1.0, math.exp(-2), 2.0, True),  # exactly at the boundary
        (1.0, 1.0, math.exp(-2), 2.001, False),
        (0.1, 1.0, 0.5, 0.0693, True),  # 0.1 * ln 2 = 0.0693...
        (0.1, 1.0, 0.5, 0.07, False),
        (0.1, 2.0, 0.5, 0.13, True),  # a larger beta refreshes earlier
    ],
)
def test_the_rule(delta: float, beta: float, rand: float, time_left: float, expected: bool) -> None:
    got = should_refresh(delta=delta, beta=beta, time_left=time_left, rand=fixed(rand))
    assert got is expected


def test_off_expired_or_unknown_cost_never_refresh() -> None:
    calls: list[int] = []

    def rand() -> float:
        calls.append(1)
        return 0.0

    assert not should_refresh(delta=1, beta=0, time_left=1, rand=rand)
    assert not should_refresh(delta=1, beta=1, time_left=0, rand=rand)
    assert not should_refresh(delta=1, beta=1, time_left=-1, rand=rand)
    assert not should_refresh(delta=0, beta=1, time_left=1, rand=rand)
    assert calls == []  # no random number drawn when the answer is fixed


def test_refreshes_grow_likelier_as_expiry_nears() -> None:
    draws = [i / 1000 for i in range(1, 1001)]

    def share(time_left: float) -> float:
        hits = sum(
            should_refresh(delta=1, beta=1, time_left=time_left, rand=fixed(r)) for r in draws
        )
        return hits / len(draws)

    assert share(5.0) < share(1.0) < share(0.1)


def test_an_entrys_own_load_time_is_its_delta_in_ms() -> None:
    """``refresh_due`` reads an entry as Redis gives it: PTTL and load time in ms."""
    from writebehind.sdk.reading.xfetch import refresh_due

    half = fixed(math.exp(-1))  # -ln(rand) == 1: refresh once time left <= delta * beta
    assert refresh_due(beta=1, load_ms=200, fallback_delta=9, ttl_ms=200, rand=half)
    assert not refresh_due(beta=1, load_ms=200, fallback_delta=9, ttl_ms=201, rand=half)
    # No recorded load time: the reader's own running average (seconds) stands in.
    assert refresh_due(beta=1, load_ms=None, fallback_delta=0.5, ttl_ms=500, rand=half)
    assert not refresh_due(beta=1, load_ms=None, fallback_delta=0.5, ttl_ms=501, rand=half)
    assert refresh_due(beta=1, load_ms=1, fallback_delta=0.001, ttl_ms=10**9, rand=fixed(0.0))
    assert not refresh_due(beta=1, load_ms=200, fallback_delta=9, ttl_ms=-1, rand=fixed(0.0))
