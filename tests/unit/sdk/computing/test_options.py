"""The decorator's options are checked when made (no servers)."""

from __future__ import annotations

from typing import Any

import pytest

from writebehind.core.errors import ConfigurationError
from writebehind.sdk.computing.options import Options


def _options(**changes: Any) -> Options:
    values: dict[str, Any] = {
        "ttl": 60,
        "key": None,
        "tags": (),
        "namespace": None,
        "depends_on": None,
        "cache_if": None,
        "early_refresh": None,
    }
    values.update(changes)
    return Options(**values)


def test_good_options() -> None:
    options = _options(ttl=0.5, key=lambda x: str(x), namespace="n", lock_timeout=10)
    assert options.ttl == 0.5 and options.lock_timeout == 10


@pytest.mark.parametrize(
    "changes",
    [
        {"ttl": 0},
        {"ttl": -1},
        {"ttl": True},
        {"ttl": "60"},
        {"ttl": float("nan")},
        {"key": 42},
        {"namespace": ""},
        {"namespace": 1},
        {"depends_on": "users"},
        {"cache_if": True},
        {"early_refresh": -1},
        {"early_refresh": True},
        {"lock_timeout": 0},
        {"lock_timeout": float("inf")},
    ],
)
def test_bad_options_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        _options(**changes)
