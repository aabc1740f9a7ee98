"""Unit tests for writebehind.cli.common's duration flags: seconds or 250ms/30s/5m/2h."""

from __future__ import annotations

import click
import pytest

from writebehind.cli.common import duration_callback
from writebehind.cli.failures import UsageProblem

FLAG = click.Option(["--fence-ttl"])
CTX = click.Context(click.Command("x"))


@pytest.mark.parametrize(
    ("given", "seconds"),
    [("60", 60.0), ("1.5", 1.5), ("250ms", 0.25), ("5m", 300.0), ("2h", 7200.0)],
)
def test_a_duration_flag_takes_seconds_and_readable_forms(given: str, seconds: float) -> None:
    assert duration_callback(positive=True)(CTX, FLAG, given) == seconds


@pytest.mark.parametrize(
    ("given", "positive", "message"),
    [
        ("soon", False, "--fence-ttl: not a duration"),
        ("-1", False, "--fence-ttl: must be 0 or more"),
        ("nan", False, "--fence-ttl: must be 0 or more"),
        ("0", True, "--fence-ttl: must be more than 0"),
    ],
)
def test_a_bad_duration_is_one_usage_line_naming_the_flag(
    given: str, positive: bool, message: str
) -> None:
    with pytest.raises(UsageProblem, match=message):
        duration_callback(positive=positive)(CTX, FLAG, given)


def test_zero_is_a_duration_where_it_may_be() -> None:
    assert duration_callback(positive=False)(CTX, FLAG, "0s") == 0.0
