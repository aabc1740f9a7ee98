"""SINCE/UNTIL parsing, retained-history gaps and range estimates (no servers)."""

from __future__ import annotations

import pytest

from writebehind.core.version import Version
from writebehind.tools.replay.bounds import (
    END_SEQ,
    BoundError,
    Gap,
    ReplayRange,
    StreamHistory,
    describe,
    estimate_records,
    find_gap,
    iso,
    parse_bound,
)

T = 1718020800000  # 2024-06-10T12:00:00Z


@pytest.mark.parametrize(
    ("text", "since", "until"),
    [
        ("1718020800000-3", Version(T, 3), Version(T, 3)),
        ("1718020800000", Version(T, 0), Version(T, END_SEQ)),
        ("0", Version(0, 0), Version(0, END_SEQ)),
        (" 1718020800000-0 ", Version(T, 0), Version(T, 0)),
        ("2024-06-10T12:00:00Z", Version(T, 0), Version(T, END_SEQ)),
        ("2024-06-10T12:00:00+00:00", Version(T, 0), Version(T, END_SEQ)),
        ("2024-06-10T14:00:00+02:00", Version(T, 0), Version(T, END_SEQ)),
        ("2024-06-10T07:30:00-04:30", Version(T, 0), Version(T, END_SEQ)),
        ("2024-06-10T12:00:00", Version(T, 0), Version(T, END_SEQ)),  # naive = UTC
        ("2024-06-10 12:00", Version(T, 0), Version(T, END_SEQ)),
        ("2024-06-10", Version(T - 12 * 3600_000, 0), Version(T - 12 * 3600_000, END_SEQ)),
        ("2024-06-10T12:00:00.123Z", Version(T + 123, 0), Version(T + 123, END_SEQ)),
        # Sub-millisecond digits fall within their millisecond.
        ("2024-06-10T12:00:00.123999Z", Version(T + 123, 0), Version(T + 123, END_SEQ)),
        ("1970-01-01T00:00:00Z", Version(0, 0), Version(0, END_SEQ)),
    ],
)
def test_bounds_parse_times_and_ids(text: str, since: Version, until: Version) -> None:
    assert parse_bound(text) == since
    assert parse_bound(text, end=True) == until


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "yesterday",
        "1718020800000-",
        "-5",
        "1718020800000-3-1",
        "2024-13-01T00:00:00Z",
        "2024-06-10T25:00:00",
        "1969-12-31T23:59:59Z",
        "99999999999999999999",
        "1-99999999999999999999",
    ],
)
def test_unreadable_bounds_are_refused(text: str) -> None:
    with pytest.raises(BoundError):
        parse_bound(text)


def test_unreadable_bound_message_shows_both_forms() -> None:
    with pytest.raises(BoundError, match=r"ISO-8601 .*stream entry id"):
        parse_bound("last tuesday")


def test_range_refuses_until_before_since() -> None:
    with pytest.raises(BoundError, match=r"UNTIL .* is before SINCE"):
        ReplayRange.parse("2024-06-10T12:00:00Z", "2024-06-10T11:59:59Z")
    with pytest.raises(BoundError):
        ReplayRange.parse("1718020800000-5", "1718020800000-4")
    # One millisecond as both ends is every entry of it.
    assert ReplayRange.parse("1718020800000", "1718020800000") == ReplayRange(
        Version(T, 0), Version(T, END_SEQ)
    )
    assert ReplayRange.parse("5-0").until is None


def test_times_print_as_utc_iso_with_milliseconds() -> None:
    assert iso(T + 7) == "2024-06-10T12:00:00.007Z"
    assert iso(0) == "1970-01-01T00:00:00.000Z"
    assert describe(Version(T, 3)) == "2024-06-10T12:00:00.000Z (1718020800000-3)"
    assert describe(Version(T, END_SEQ)) == "2024-06-10T12:00:00.000Z (1718020800000-*)"
    # Round trip: what we print parses back to the same bound.
    assert parse_bound(iso(T + 7)) == Version(T + 7, 0)


# -- retained history -----------------------------------------------------------------


def history(**kw: object) -> StreamHistory:
    values: dict[str, object] = {
        "partition": 1,
        "exists": True,
        "length": 3,
        "first_id": Version(100, 0),
        "last_id": Version(300, 0),
        "last_generated": Version(300, 0),
        "max_deleted": Version(0, 0),
        "entries_added": 3,
    }
    values.update(kw)
    return StreamHistory(**values)  # type: ignore[arg-type]


def test_an_untrimmed_stream_has_no_gap_whatever_since() -> None:
    assert find_gap(history(), Version(0, 0)) is None
    assert find_gap(history(), Version(200, 0)) is None
    assert find_gap(StreamHistory(0, exists=False), Version(0, 0)) is None


def test_a_trimmed_stream_has_a_gap_before_its_first_entry() -> None:
    trimmed = history(entries_added=10)
    assert find_gap(trimmed, Version(99, 5)) == Gap(1, Version(100, 0), Version(100, 0))
    assert find_gap(trimmed, Version(0, 0)) is not None
    # From the first retained entry on, nothing is missing.
    assert find_gap(trimmed, Version(100, 0)) is None
    assert find_gap(trimmed, Version(250, 0)) is None


def test_an_emptied_stream_has_a_gap_up_to_its_last_id() -> None:
    emptied = history(length=0, first_id=None, last_id=None, entries_added=3)
    assert find_gap(emptied, Version(300, 0)) == Gap(1, Version(300, 1), None)
    assert find_gap(emptied, Version(300, 1)) is None
    never_written = history(length=0, first_id=None, last_id=None, entries_added=0)
    assert find_gap(never_written, Version(0, 0)) is None


def test_xdel_inside_the_range_is_a_gap() -> None:
    # Redis records the highest XDELed id; anything at or before it may be missing.
    deleted = history(max_deleted=Version(200, 0), entries_added=4)
    assert find_gap(deleted, Version(150, 0)) == Gap(1, Version(200, 1), Version(100, 0))
    assert find_gap(deleted, Version(200, 1)) is None


def test_unknown_entries_added_is_not_taken_for_a_trim() -> None:
    assert find_gap(history(entries_added=None), Version(0, 0)) is None


def test_gap_as_dict_names_the_time_to_resume_from() -> None:
    gap = Gap(2, Version(T, 1), Version(T, 1))
    assert gap.as_dict() == {
        "partition": 2,
        "resume_from": f"{T}-1",
        "resume_from_time": "2024-06-10T12:00:00.000Z",
        "retained_from": f"{T}-1",
    }


def test_estimate_is_exact_for_the_whole_stream_and_proportional_inside() -> None:
    h = history(length=1000, first_id=Version(0, 0), last_id=Version(999, 0))
    assert estimate_records(h, Version(0, 0), None) == 1000
    assert estimate_records(h, Version(0, 0), Version(10**6, 0)) == 1000
    assert estimate_records(h, Version(500, 0), None) == 500
    assert estimate_records(h, Version(0, 0), Version(99, END_SEQ)) == 100
    assert estimate_records(h, Version(2000, 0), None) == 0
    assert estimate_records(h, Version(999, 1), None) == 0
    assert estimate_records(StreamHistory(0, exists=False), Version(0, 0), None) == 0
    one_ms = history(length=5, first_id=Version(7, 0), last_id=Version(7, 4))
    assert estimate_records(one_ms, Version(7, 2), None) == 5  # never more than the length
