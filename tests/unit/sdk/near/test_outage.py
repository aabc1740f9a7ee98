"""The near-cache feed's outage log: one line when it starts, one when it ends (no IO)."""

from __future__ import annotations

import logging

import pytest

from writebehind.sdk.near.outage import OutageLog


def test_an_outage_of_many_partitions_is_one_line_and_a_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    outage = OutageLog(logging.getLogger("writebehind.near"), clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="writebehind.near")
    for _ in range(5):  # five retries, a second apart, of three partitions of one master
        for partition in (0, 3, 6):
            outage.failed((partition,), "ConnectionError")
        now[0] += 1.0
    outage.connected((0,))
    outage.connected((3,))
    assert outage.ongoing  # partition 6 is still down: no summary yet
    outage.connected((6,))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "near-cache feed lost (ConnectionError); reconnecting (further failures are counted "
        "until it is back)",
        "near-cache feed reconnected after 5.0 s (15 failed attempts, 3 of its connections "
        "affected)",
    ]
    assert not outage.ongoing


def test_connections_made_with_no_outage_say_nothing(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog(logging.getLogger("writebehind.near"))
    caplog.set_level(logging.INFO, logger="writebehind.near")
    outage.connected((0,))
    outage.connected("slots")
    assert caplog.records == []


def test_a_later_outage_is_logged_again(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog(logging.getLogger("writebehind.near"))
    caplog.set_level(logging.INFO, logger="writebehind.near")
    outage.failed((0,), "TimeoutError")
    outage.connected((0,))
    outage.failed((1,), "ConnectionError")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "near-cache feed lost",
        "near-cache feed reconnected after 0.0 s",
        "near-cache feed lost",
    ]
