"""Unit tests for the pure part of writebehind.sdk.persisted: does a stored document hold it."""

from __future__ import annotations

from writebehind.core.version import Version
from writebehind.sdk.persisted import holds

V = Version(5, 10)


def test_the_same_or_a_newer_version_holds_the_write() -> None:
    assert holds({"_id": 1, "_wb": {"v": [5, 10]}}, V)
    assert holds({"_id": 1, "_wb": {"v": [5, 11]}}, V)
    assert holds({"_id": 1, "_wb": {"v": [6, 0]}}, V)


def test_an_older_version_or_no_version_does_not() -> None:
    assert not holds({"_id": 1, "_wb": {"v": [5, 9]}}, V)
    assert not holds({"_id": 1}, V)  # written to MongoDB directly
    assert not holds({"_id": 1, "_wb": "damaged"}, V)
    assert not holds(None, V)
