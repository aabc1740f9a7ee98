"""Unit tests for writebehind.sdk.near.policy: NearCache's checks and the feed's block."""

from __future__ import annotations

import pytest

from writebehind.core.errors import ConfigurationError
from writebehind.sdk.near.policy import NearCache, feed_block_ms
from writebehind.sdk.reading.policy import ReadPolicy


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_entries": 0},
        {"max_entries": 1.5},
        {"ttl": 0},
        {"max_stale": -1},
        {"max_stale": float("nan")},
        {"block": True},
    ],
)
def test_bad_near_cache_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        NearCache(**kwargs)  # type: ignore[arg-type]


def test_the_read_policy_takes_only_a_near_cache() -> None:
    with pytest.raises(ConfigurationError):
        ReadPolicy(near={"max_entries": 10})  # type: ignore[arg-type]
    assert ReadPolicy(near=NearCache()).near == NearCache()


def test_the_feed_block_stays_under_half_of_max_stale() -> None:
    assert feed_block_ms(NearCache(max_stale=0.1, block=1.0)) == 50
    assert feed_block_ms(NearCache(max_stale=5.0, block=0.2)) == 200
