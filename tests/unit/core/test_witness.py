"""The failover fence's pure parts (core/witness.py); the fence on real servers is
tests/integration/test_failover_fence.py."""

from __future__ import annotations

import pytest

from writebehind.core.witness import Witness, _holds, newest_entry


def test_the_witness_of_a_batch_is_its_highest_id_by_number_not_text() -> None:
    entries = [(b"9-5", {b"k": b"a"}), (b"10-0", {b"k": b"b"}), (b"10-1", {b"k": b"c"})]
    assert newest_entry("s", entries) == Witness("s", "10-1", {b"k": b"c"})
    with pytest.raises(ValueError, match="empty"):
        newest_entry("s", [])


def test_an_entry_holds_a_witness_only_with_its_id_and_every_field_given() -> None:
    witness = Witness("s", "5-0", {b"k": b"a"})
    assert _holds([(b"5-0", {b"k": b"a", b"d": b"x"})], witness)
    assert not _holds([], witness)  # gone: trimmed, or never on this primary
    assert not _holds([(b"5-0", {b"k": b"b"})], witness)  # the same id issued for another write
    assert not _holds([(b"5-0", None)], witness)
    assert _holds([(b"5-0", {})], Witness("s", "5-0"))
