"""ReadPolicy's checks and derived values, and cache-entry parsing (no servers)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from writebehind import ReadPolicy
from writebehind.core.errors import ConfigurationError, InvalidInput, UnsupportedIdType
from writebehind.core.version import Version
from writebehind.sdk.reading.entry import MISSING, parse_entry, parse_script_reply
from writebehind.sdk.reading.reader import checked_ids


def test_defaults() -> None:
    policy = ReadPolicy()
    assert policy.fill and policy.ttl == 3600 and policy.early_refresh == 0
    assert policy.effective_negative_ttl == 30
    assert policy.negative_ttl_ms() == 30_000


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ReadPolicy().ttl = 5  # type: ignore[misc]


def test_negative_ttl_is_capped_whatever_is_asked() -> None:
    assert ReadPolicy(negative_ttl=3600).effective_negative_ttl == 30
    assert ReadPolicy(negative_ttl=3600, max_negative_ttl=60).negative_ttl_ms() == 60_000
    assert ReadPolicy(negative_ttl=0).negative_ttl_ms() == 0


def test_ttl_jitter_takes_off_up_to_its_fraction() -> None:
    policy = ReadPolicy(ttl=100, ttl_jitter=0.2)
    assert policy.entry_ttl_ms(0.0) == 100_000
    assert policy.entry_ttl_ms(1.0) == 80_000
    assert policy.entry_ttl_ms(0.5) == 90_000


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


def test_parse_entries() -> None:
    assert parse_entry([None, None, None, None, None], -2) is MISSING
    dirty = parse_entry([b"5-1", b"BSON", None, None, None], -1)
    assert dirty.version == Version(5, 1) and not dirty.clean and not dirty.reads_absent
    clean = parse_entry([b"5-1", b"BSON", None, None, b"12"], 9000)
    assert clean.clean and clean.load_ms == 12 and clean.ttl_ms == 9000
    assert parse_entry([b"5-1", None, b"1", None, None], 10).tombstone
    negative = parse_entry([b"0-0", None, None, b"1", None], 10)
    assert negative.negative and negative.reads_absent


def test_parse_script_replies() -> None:
    reply = parse_script_reply([b"filled", 1700, b"2-0", b"B", None, None, b"3", 500])
    assert reply.status == "filled" and reply.now_ms == 1700
    assert reply.entry.version == Version(2, 0) and reply.entry.body == b"B"
    assert parse_script_reply([b"l", 1700]).entry is MISSING


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
