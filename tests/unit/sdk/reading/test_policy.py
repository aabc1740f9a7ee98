"""ReadPolicy's checks and derived values, and cache-entry parsing (no servers)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from writebehind import ReadPolicy
from writebehind.core.errors import ConfigurationError, InvalidInput, UnsupportedIdType
from writebehind.sdk.reading.policy import entry_ttl_ms, negative_ttl_ms
from writebehind.sdk.reading.reader import checked_ids


def test_defaults() -> None:
    policy = ReadPolicy()
    assert policy.fill and policy.ttl == 3600 and policy.early_refresh == 0
    assert policy.effective_negative_ttl == 30
    assert negative_ttl_ms(policy) == 30_000


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ReadPolicy().ttl = 5  # type: ignore[misc]


def test_negative_ttl_is_capped_whatever_is_asked() -> None:
    assert ReadPolicy(negative_ttl=3600).effective_negative_ttl == 30
    assert negative_ttl_ms(ReadPolicy(negative_ttl=3600, max_negative_ttl=60)) == 60_000
    assert negative_ttl_ms(ReadPolicy(negative_ttl=0)) == 0


def test_ttl_jitter_takes_off_up_to_its_fraction() -> None:
    policy = ReadPolicy(ttl=100, ttl_jitter=0.2)
    assert entry_ttl_ms(policy, 0.0) == 100_000
    assert entry_ttl_ms(policy, 1.0) == 80_000
    assert entry_ttl_ms(policy, 0.5) == 90_000


@pytest.mark.parametrize(
    "bad",
    [
        {"ttl": 0},
        {"ttl": -1},
        {"ttl": float("inf")},
        {"ttl_jitter": -0.1},
        {"ttl_jitter": 1},
        {"negative_ttl": -1},
        {"max_negative_ttl": float("nan")},
        {"lock_timeout": 0},
        {"lock_timeout": 3600},
        {"redis_timeout": 0},
        {"redis_timeout": True},
        {"early_refresh": -1},
        {"breaker_failures": 0},
        {"breaker_failures": 1.5},
        {"breaker_cooldown": 0},
        {"fill": 1},
    ],
)
def test_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        ReadPolicy(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("ids", ["u1", b"u1", {"u1": 1}, 5, None])
def test_get_many_refuses_what_is_not_an_iterable_of_ids(ids: Any) -> None:
    with pytest.raises(InvalidInput):
        checked_ids(ids)


@pytest.mark.parametrize("ids", [[[1]], [{"a": 1}], [1.5], [True]])
def test_get_many_refuses_ids_of_unsupported_types(ids: list[Any]) -> None:
    with pytest.raises(UnsupportedIdType):
        checked_ids(ids)


def test_get_many_ids_keep_their_order_without_duplicates() -> None:
    assert checked_ids(iter(["b", 42, "b", "42"])) == ["b", 42, "42"]


def test_ttl_defaults_to_the_workers_clean_ttl() -> None:
    """A filled entry lives as long as one the worker cleans (``--clean-ttl``)."""
    from writebehind.settings import Settings

    assert Settings.model_fields["clean_ttl"].default == ReadPolicy().ttl
