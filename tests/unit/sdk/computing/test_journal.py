"""The bounded journal of invalidations Redis did not take (no servers)."""

from __future__ import annotations

import pytest

from writebehind.core.errors import ConfigurationError
from writebehind.sdk.computing.journal import Invalidation, Journal


def test_covers_what_it_holds() -> None:
    journal = Journal(10)
    assert journal.empty and not journal.covers("e", ["t"], "ns")
    journal.add(Invalidation("key", "e1"))
    journal.add(Invalidation("tag", "t1"))
    journal.add(Invalidation("tag", "t1"))  # once
    journal.add(Invalidation("namespace", "ns1"))
    assert len(journal) == 3
    assert journal.covers("e1", [], "other")
    assert journal.covers("e2", ["t0", "t1"], "other")
    assert journal.covers("e2", [], "ns1")
    assert not journal.covers("e2", ["t0"], "ns0")


def test_overflow_covers_everything_until_applied() -> None:
    journal = Journal(2)
    for name in ("a", "b", "c"):
        journal.add(Invalidation("tag", name))
    assert journal.overflowed and len(journal) == 2
    assert journal.covers("anything", [], "anywhere")
    pending = journal.pending()
    journal.applied(pending)
    assert journal.empty and not journal.covers("anything", [], "anywhere")


def test_what_came_in_while_applying_stays() -> None:
    journal = Journal(2)
    journal.add(Invalidation("tag", "a"))
    journal.add(Invalidation("tag", "b"))
    journal.add(Invalidation("tag", "c"))  # overflows
    pending = journal.pending()
    journal.add(Invalidation("tag", "d"))  # overflows again, after the snapshot
    journal.applied(pending)
    assert journal.overflowed  # the second overflow was not applied
    journal.applied(journal.pending())
    assert journal.empty
    journal.add(Invalidation("key", "x"))
    pending = journal.pending()
    journal.add(Invalidation("key", "y"))
    journal.applied(pending)
    assert not journal.covers("x", [], "n") and journal.covers("y", [], "n")


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_limit_is_checked(limit: object) -> None:
    with pytest.raises(ConfigurationError):
        Journal(limit)  # type: ignore[arg-type]
