"""Unit tests for the worker's settings (``writebehind.settings.Settings``, also known as
``WorkerSettings``): validated at construction, errors naming the flag and the variable."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from writebehind.core.errors import ConfigurationError, WriteBehindError
from writebehind.core.keys import KeySpace
from writebehind.settings import named
from writebehind.worker.settings import WorkerSettings, default_consumer_name


def names(field: str) -> str:
    """What an error about ``field`` says: ``--batch-size (WRITEBEHIND_BATCH_SIZE)``."""
    return re.escape(named(field))


def test_defaults_are_valid() -> None:
    settings = WorkerSettings()
    assert settings.prefix == "wb"
    assert settings.partitions == 16
    assert settings.group == "writebehind"
    assert settings.consumer
    assert settings.tombstone_grace >= settings.retention
    assert 0 < settings.batch_size <= 10_000


def test_default_consumer_names_differ() -> None:
    assert default_consumer_name() != default_consumer_name()
    assert WorkerSettings().consumer != WorkerSettings().consumer


def test_settings_are_frozen() -> None:
    settings = WorkerSettings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.batch_size = 1


POSITIVE = [
    "concurrency",
    "batch_size",
    "read_block",
    "claim_idle",
    "claim_interval",
    "max_deliveries",
    "trim_interval",
    "clean_ttl",
    "backoff_base",
    "backoff_cap",
]
NON_NEGATIVE = ["linger", "drain_timeout", "retention", "tombstone_grace", "consumer_idle"]


@pytest.mark.parametrize("name", POSITIVE)
@pytest.mark.parametrize("value", [0, -1, float("nan")])
def test_non_positive_is_refused(name: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=names(name)):
        WorkerSettings(**{name: value})


@pytest.mark.parametrize("name", POSITIVE)
def test_small_positive_is_accepted(name: str) -> None:
    value = (
        0.001
        if name in {"claim_interval", "trim_interval", "backoff_base", "backoff_cap", "read_block"}
        else 1
    )
    assert getattr(WorkerSettings(**{name: value}), name) == value


@pytest.mark.parametrize("name", NON_NEGATIVE)
@pytest.mark.parametrize("value", [-1, -0.5, float("nan")])
def test_negative_is_refused(name: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=names(name)):
        WorkerSettings(**{name: value})


@pytest.mark.parametrize(
    "overrides",
    [
        {"linger": 0},
        {"drain_timeout": 0},
        {"consumer_idle": 0},
        {"retention": 0, "tombstone_grace": 0},
        {"retention": 0},
        {"retention": 100.0, "tombstone_grace": 100.0},
    ],
)
def test_zero_is_accepted_where_non_negative(overrides: dict[str, Any]) -> None:
    WorkerSettings(**overrides)


@pytest.mark.parametrize(("batch_size", "ok"), [(10_000, True), (10_001, False), (10**6, False)])
def test_batch_size_upper_bound(batch_size: int, ok: bool) -> None:
    if ok:
        assert WorkerSettings(batch_size=batch_size).batch_size == batch_size
    else:
        with pytest.raises(ConfigurationError, match=names("batch_size")):
            WorkerSettings(batch_size=batch_size)


@pytest.mark.parametrize("overrides", [{"group": ""}, {"consumer": ""}])
def test_empty_names_are_refused(overrides: dict[str, str]) -> None:
    [field] = overrides
    with pytest.raises(ConfigurationError, match=names(field) + ": String should have at least 1"):
        WorkerSettings(**overrides)


@pytest.mark.parametrize(
    ("retention", "grace"), [(3600.0, 3599.0), (24 * 3600.0, 3600.0), (10.0, 0.5)]
)
def test_tombstone_grace_shorter_than_retention_is_refused(retention: float, grace: float) -> None:
    with pytest.raises(ConfigurationError, match=names("tombstone_grace")):
        WorkerSettings(retention=retention, tombstone_grace=grace)


def test_zero_tombstone_grace_with_retention_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=names("tombstone_grace")):
        WorkerSettings(retention=3600.0, tombstone_grace=0)


@pytest.mark.parametrize("prefix", ["", "a:b", "{wb}", "has space", "x" * 65, "é"])
def test_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match=names("prefix")):
        WorkerSettings(prefix=prefix)


@pytest.mark.parametrize("partitions", [0, -1, 4097, True])
def test_bad_partitions_are_refused(partitions: Any) -> None:
    with pytest.raises(ConfigurationError, match=names("partitions")):
        WorkerSettings(partitions=partitions)


def test_configuration_error_is_a_writebehind_error() -> None:
    with pytest.raises(WriteBehindError):
        WorkerSettings(batch_size=0)


@pytest.mark.parametrize(("prefix", "partitions"), [("wb", 16), ("app.v2-x_y", 1), ("p", 4096)])
def test_keys_property(prefix: str, partitions: int) -> None:
    keys = WorkerSettings(prefix=prefix, partitions=partitions).keys
    assert isinstance(keys, KeySpace)
    assert keys == KeySpace(prefix, partitions)
    assert (keys.prefix, keys.partitions) == (prefix, partitions)
    assert keys.stream(0) == f"{{{prefix}:p0}}:stream"


def test_a_misspelt_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="batchsize"):
        WorkerSettings(batchsize=100)
