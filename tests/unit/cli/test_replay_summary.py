"""The replay report's wording of refused records: new letters versus letters already there."""

from __future__ import annotations

import pytest

from writebehind.cli.replay import refusal_line, summary
from writebehind.tools.replay import ReplayOptions, ReplayRange, ReplayResult


def result(added: int, already: int) -> ReplayResult:
    done = ReplayResult(ReplayOptions(ReplayRange.parse("0", None)), [0, 1])
    done.dead_lettered, done.already_dead_lettered = added, already
    return done


@pytest.mark.parametrize(
    ("added", "already", "text"),
    [
        (2, 0, "2 records were refused by MongoDB and dead-lettered: "),
        (1, 0, "1 record was refused by MongoDB and dead-lettered: "),
        (
            0,
            1,
            "1 record was refused by MongoDB and already dead-lettered (no new letter written): ",
        ),
        (0, 1200, "1,200 records were refused by MongoDB and already dead-lettered (no new "),
        (1, 2, "3 records were refused by MongoDB: 1 dead-lettered now, 2 already dead-lettered "),
    ],
)
def test_refusal_line(added: int, already: int, text: str) -> None:
    line = refusal_line(added, already)
    assert line.startswith(text)
    assert line.endswith("see `writebehind dlq list`.")


def test_refused_counts_both_and_json_keeps_dead_lettered_for_new_letters() -> None:
    done = result(1, 2)
    assert done.refused == 3
    totals = done.as_dict()["totals"]
    assert (totals["dead_lettered"], totals["already_dead_lettered"]) == (1, 2)
    assert result(0, 0).as_dict()["totals"]["already_dead_lettered"] == 0


def test_summary_row_and_closing_line() -> None:
    text = summary(result(0, 2))
    assert "  dead-lettered     0  (2 more already dead-lettered; no new letter)\n" in text
    assert text.count("refused by MongoDB") == 1
    clean = summary(result(0, 0))
    assert "  dead-lettered     0\n" in clean
    assert "refused" not in clean
