"""Cache-Control and Vary from a CachePolicy; invalid combinations refused when made."""

from __future__ import annotations

from typing import Any

import pytest

from writebehind.core.errors import InvalidCachePolicy, InvalidInput
from writebehind.http import CachePolicy
from writebehind.sdk.reading.policy import ReadPolicy


def test_the_default_is_private_only() -> None:
    assert CachePolicy().headers() == {"Cache-Control": "private"}


def test_every_directive_in_a_fixed_order() -> None:
    policy = CachePolicy(
        scope="public",
        max_age=60,
        s_maxage=120,
        stale_while_revalidate=30,
        stale_if_error=600,
        no_cache=True,
        vary=("Accept", "Accept-Encoding"),
    )
    assert policy.headers() == {
        "Cache-Control": "public, no-cache, max-age=60, s-maxage=120, "
        "stale-while-revalidate=30, stale-if-error=600",
        "Vary": "Accept, Accept-Encoding",
    }


def test_no_store_and_nothing_to_say() -> None:
    assert CachePolicy(no_store=True).cache_control() == "private, no-store"
    assert CachePolicy(scope=None).headers() == {}
    assert CachePolicy(scope=None, max_age=0).cache_control() == "max-age=0"
    assert CachePolicy(vary=["*"]).vary == ("*",)


def test_from_reads_revalidates_and_falls_back_for_the_cache_ttl() -> None:
    policy = CachePolicy.from_reads(ReadPolicy(ttl=900, lock_timeout=1))
    assert policy.cache_control() == "private, max-age=0, stale-if-error=900"
    assert CachePolicy.from_reads(ReadPolicy()).stale_if_error == 3600
    shared = CachePolicy.from_reads(ReadPolicy(), scope="public", s_maxage=5)
    assert shared.cache_control() == "public, max-age=0, s-maxage=5, stale-if-error=3600"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_age": -1},
        {"s_maxage": -5, "scope": "public"},
        {"stale_while_revalidate": -1},
        {"stale_if_error": -1},
        {"max_age": 1.5},
        {"max_age": 60.0},
        {"max_age": True},
        {"max_age": "60"},
        {"max_age": 2**31 + 1},
        {"no_store": True, "max_age": 60},
        {"no_store": True, "max_age": 0},
        {"no_store": True, "stale_if_error": 10},
        {"no_store": True, "s_maxage": 10, "scope": "public"},
        {"s_maxage": 10},  # with the default private scope
        {"scope": "shared"},
        {"no_cache": 1},
        {"no_store": "yes"},
        {"vary": "Accept"},
        {"vary": ("Accept Encoding",)},
        {"vary": ("",)},
        {"vary": ("*", "Accept")},
        {"vary": (1,)},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidCachePolicy):
        CachePolicy(**kwargs)


def test_the_refusal_is_an_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        CachePolicy(max_age=-1)
    with pytest.raises(InvalidCachePolicy, match="not CachePolicy fields: maxage"):
        CachePolicy.from_reads(ReadPolicy(), maxage=5)
    with pytest.raises(InvalidCachePolicy):
        CachePolicy.from_reads(ReadPolicy(), no_store=True)  # with its max-age=0


def test_the_largest_age_is_accepted() -> None:
    assert CachePolicy(max_age=2**31).max_age == 2**31
