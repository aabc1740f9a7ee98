"""Unit tests for writebehind.sink.reapply: outcome prediction, and no retrying of bugs."""

from __future__ import annotations

import anyio
import pytest

from tests.support.records import decoded
from writebehind.core.codec import Op
from writebehind.core.version import Version
from writebehind.sink.bulk import MongoSink
from writebehind.sink.guards import Pending
from writebehind.sink.reapply import Outcome, Reapplier, predict


def pending(entry_id: str, op: Op = "set") -> Pending:
    return decoded(entry_id, "a", op=op, n=1)


@pytest.mark.parametrize(
    ("stored", "exists", "op", "expected"),
    [
        (None, False, "set", Outcome.INSERTED),
        (Version(1, 0), True, "set", Outcome.UPDATED),
        (Version(1, 0), False, "set", Outcome.INSERTED),  # over a tombstone
        (Version(6, 0), True, "set", Outcome.SKIPPED_NEWER),
        (Version(5, 1), True, "set", Outcome.SKIPPED_NEWER),
        (Version(1, 0), True, "del", Outcome.DELETED),
    ],
)
def test_predict(stored: Version | None, exists: bool, op: Op, expected: Outcome) -> None:
    assert predict(pending("5-1", op), stored, exists) is expected


@pytest.mark.anyio
async def test_a_bug_is_raised_at_once_not_retried_for_minutes() -> None:
    # A database object without get_collection: a programming error, not an outage.
    reapplier = Reapplier(MongoSink(object(), prefix="wb"), retry_for=300.0)
    with anyio.fail_after(5), pytest.raises(AttributeError):
        await reapplier.apply([pending("5-1")])
