"""Unit tests for writebehind.sink.settle: acknowledge, dead-letter or retry after a write."""

from __future__ import annotations

import pytest

from tests.support.records import decoded
from writebehind.sink.classify import ErrorInfo, Failure
from writebehind.sink.guards import Pending
from writebehind.sink.plan import DocumentWrites, coalesce
from writebehind.sink.settle import settle

REFUSED = ErrorInfo(Failure.PERMANENT, 121, "Document failed validation")
DOWN = ErrorInfo(Failure.TRANSIENT, 91, "shutdown in progress")


def pending(entry_id: str, doc_id: object, collection: str = "users") -> Pending:
    return decoded(entry_id, doc_id, collection=collection, at=entry_id)


def groups_of(*pendings: Pending) -> list[DocumentWrites]:
    return coalesce(pendings)


def test_written_documents_are_persisted_with_every_record() -> None:
    groups = groups_of(pending("1-0", "a"), pending("2-0", "a"), pending("3-0", "b"))
    settled = settle(groups, [None, None])
    assert [g.entry_ids() for g in settled.persisted] == [["1-0", "2-0"], ["3-0"]]
    assert settled.refused == []
    assert settled.retry == []
    assert settled.transient is None


def test_a_refused_newest_is_dead_lettered_and_the_next_newest_gets_its_turn() -> None:
    groups = groups_of(pending("1-0", "a"), pending("2-0", "a"))
    settled = settle(groups, [REFUSED])
    assert [(p.entry_id, e) for p, e in settled.refused] == [("2-0", REFUSED)]
    assert [g.newest.entry_id for g in settled.retry] == ["1-0"]
    assert settled.persisted == []
    # No transient failure: the next round runs at once, without backoff.
    assert settled.transient is None


def test_a_refused_only_record_leaves_nothing_to_retry() -> None:
    settled = settle(groups_of(pending("1-0", "a")), [REFUSED])
    assert [p.entry_id for p, _ in settled.refused] == ["1-0"]
    assert settled.retry == []


def test_a_transient_failure_retries_the_document_unchanged() -> None:
    groups = groups_of(pending("1-0", "a"), pending("2-0", "a"), pending("3-0", "b"))
    settled = settle(groups, [DOWN, None])
    assert [g.entry_ids() for g in settled.retry] == [["1-0", "2-0"]]
    assert [g.entry_ids() for g in settled.persisted] == [["3-0"]]
    assert settled.transient is DOWN
    assert settled.refused == []


def test_mixed_outcomes_keep_the_documents_order() -> None:
    groups = groups_of(
        pending("1-0", "a"), pending("1-1", "b"), pending("1-2", "b"), pending("1-3", "c")
    )
    settled = settle(groups, [DOWN, REFUSED, None])
    assert [g.key for g in settled.retry] == ["sa", "sb"]
    assert [p.entry_id for p, _ in settled.refused] == ["1-2"]
    assert [g.key for g in settled.persisted] == ["sc"]
    assert settled.transient is DOWN


def test_results_must_match_the_documents() -> None:
    with pytest.raises(ValueError, match="2 documents but 1 results"):
        settle(groups_of(pending("1-0", "a"), pending("2-0", "b")), [None])
