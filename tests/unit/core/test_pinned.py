"""What ``core.pinned`` does with each reply of a script call on a cluster node (no IO)."""

from __future__ import annotations

import pytest
from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    MaxConnectionsError,
    MovedError,
    NoScriptError,
    OutOfMemoryError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from writebehind.core.pinned import ASK, DONE, NOSCRIPT, PAUSE, REROUTE, unknown_outcome, verdict


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ([1, b"5-0"], DONE),
        (ResponseError("WBBACKLOG 10"), DONE),  # refused: final, nothing to re-send
        (OutOfMemoryError("OOM"), DONE),
        (NoScriptError("NOSCRIPT"), NOSCRIPT),
        (MovedError("3999 127.0.0.1:6381"), REROUTE),  # a subclass of AskError
        (AskError("3999 127.0.0.1:6381"), ASK),
        (TryAgainError("TRYAGAIN"), PAUSE),
        (ClusterDownError("CLUSTERDOWN"), REROUTE),
        (RedisConnectionError("reset"), REROUTE),
        (RedisTimeoutError("timeout"), REROUTE),
        (MaxConnectionsError(), DONE),  # never sent: raised to the caller as it is
        (AuthenticationError("bad"), DONE),
    ],
)
def test_each_reply_is_finished_or_sent_again_the_right_way(reply: object, expected: str) -> None:
    assert verdict(reply) == expected


def test_only_a_dropped_connection_or_a_timeout_leaves_the_outcome_unknown() -> None:
    assert unknown_outcome(RedisConnectionError("reset"))
    assert unknown_outcome(RedisTimeoutError("timeout"))
    assert not unknown_outcome(MaxConnectionsError())
    assert not unknown_outcome(AuthenticationError("bad"))
    assert not unknown_outcome(MovedError("1 127.0.0.1:1"))
