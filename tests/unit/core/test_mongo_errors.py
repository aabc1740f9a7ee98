"""Which failed ``bulk_write`` a write-through retries: all transient, or none (no servers)."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import errors as pm

from writebehind.core.mongo_errors import bulk_write_is_transient, write_error_is_transient


def _bulk(*errors: dict[str, Any], concern: bool = False) -> pm.BulkWriteError:
    details: dict[str, Any] = {"writeErrors": list(errors), "writeConcernErrors": []}
    if concern:
        details["writeConcernErrors"] = [{"code": 64, "errmsg": "waiting for replication"}]
    return pm.BulkWriteError(details)


ID_RACE = {"index": 0, "code": 11000, "keyPattern": {"_id": 1}, "errmsg": "dup"}
OTHER_UNIQUE = {"index": 1, "code": 11000, "keyPattern": {"email": 1}, "errmsg": "dup"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"code": 112}, True),  # WriteConflict
        ({"code": 2, "errorLabels": ["RetryableWriteError"]}, True),
        (ID_RACE, True),  # two upserts raced: the retry applies the version guard
        (OTHER_UNIQUE, False),  # the document collides: poison
        ({"code": 121}, False),  # a validator refused it
    ],
)
def test_one_write_error(error: dict[str, Any], expected: bool) -> None:
    assert write_error_is_transient(error) is expected


def test_a_bulk_is_retried_only_if_every_error_is_transient() -> None:
    assert bulk_write_is_transient(_bulk(ID_RACE, {"index": 1, "code": 91}))
    assert not bulk_write_is_transient(_bulk(ID_RACE, {"index": 1, "code": 121}))
    assert bulk_write_is_transient(_bulk(concern=True))  # write-concern trouble alone


def test_other_failures() -> None:
    assert bulk_write_is_transient(pm.AutoReconnect("connection reset"))
    assert bulk_write_is_transient(pm.OperationFailure("conflict", code=112))
    assert not bulk_write_is_transient(pm.OperationFailure("bad value", code=2))
    assert not bulk_write_is_transient(ValueError("a bug"))
