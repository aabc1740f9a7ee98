"""Unit tests for writebehind.core.replies: reply text and which Redis error is which."""

from __future__ import annotations

import pytest
from redis import exceptions as redis_exceptions
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError, SlotNotCoveredError
from redis.exceptions import TimeoutError as RedisTimeoutError

from writebehind.core import replies
from writebehind.core.replies import (
    as_text,
    backlog_refusal,
    field_text,
    is_busy_group,
    is_no_group,
    is_no_such_key,
    is_stream_id_below_top,
    is_transient,
    is_transient_reply,
)

NOGROUP = ResponseError(
    "NOGROUP No such key '{t:p0}:stream' or consumer group 'writebehind' in XREADGROUP"
)
BUSYGROUP = ResponseError("BUSYGROUP Consumer Group name already exists")
NO_SUCH_KEY = ResponseError("no such key")


def test_as_text() -> None:
    assert as_text(b"1-0") == "1-0"
    assert as_text("1-0") == "1-0"
    assert as_text(7) == "7"


@pytest.mark.parametrize(
    ("exc", "no_group", "busy", "no_key"),
    [
        (NOGROUP, True, False, False),
        (BUSYGROUP, False, True, False),
        (NO_SUCH_KEY, False, False, True),
        (ResponseError("ERR no such key"), False, False, True),
        (
            ResponseError("Command # 1 (XREADGROUP) of pipeline caused error: NOGROUP x"),
            True,
            False,
            False,
        ),
        (ResponseError("WRONGTYPE Operation against a key"), False, False, False),
        (RedisConnectionError("NOGROUP in a connection error is no reply"), False, False, False),
    ],
)
def test_error_codes(exc: BaseException, no_group: bool, busy: bool, no_key: bool) -> None:
    assert is_no_group(exc) is no_group
    assert is_busy_group(exc) is busy
    assert is_no_such_key(exc) is no_key


def test_backlog_refusal_carries_the_count() -> None:
    assert backlog_refusal(ResponseError("WBBACKLOG 1234")) == 1234
    assert backlog_refusal(ResponseError("ERR something else")) is None
    assert backlog_refusal(ValueError("WBBACKLOG 1")) is None


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RedisConnectionError("Connection refused"), True),
        (RedisTimeoutError("Timeout reading from socket"), True),
        (ConnectionResetError(), True),
        (NOGROUP, False),
        (RuntimeError("a bug"), False),
    ],
)
def test_transient_means_the_connection_failed(exc: BaseException, expected: bool) -> None:
    assert is_transient(exc) is expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ResponseError("LOADING Redis is loading the dataset in memory"), True),
        (ResponseError("MASTERDOWN Link with MASTER is down"), True),
        (ResponseError("TRYAGAIN Multiple keys request during rehashing of slot"), True),
        (ResponseError("CLUSTERDOWN The cluster is down"), True),
        (ResponseError("ERR unknown command"), False),
        (RedisConnectionError("LOADING"), False),
    ],
)
def test_transient_replies_are_the_ones_waiting_fixes(exc: BaseException, expected: bool) -> None:
    assert is_transient_reply(exc) is expected


def test_an_xsetid_below_the_stream_top_is_told_apart() -> None:
    refused = ResponseError(
        "ERR The ID specified in XSETID is smaller than the target stream top item"
    )
    assert is_stream_id_below_top(refused)
    assert not is_stream_id_below_top(ResponseError("ERR no such key"))
    assert not is_stream_id_below_top(
        RedisConnectionError("smaller than the target stream top item")
    )


def test_as_text_replaces_only_when_asked() -> None:
    assert as_text(b"caf\xc3\xa9") == "café"
    assert as_text(b"\xff", errors="replace") == "\ufffd"
    with pytest.raises(UnicodeDecodeError):
        as_text(b"\xff")


def test_field_text_is_lenient_and_empty_when_absent() -> None:
    fields = {b"c": b"users", b"op": b"s\xffet"}
    assert field_text(fields, b"c") == "users"
    assert field_text(fields, b"op") == "s\ufffdet"
    assert field_text(fields, b"k") == ""


def test_a_cluster_that_cannot_be_reached_yet_is_waited_for() -> None:
    # redis-py 6 (the floor) says so in a bare RedisClusterException; redis-py 8 has a class.
    text = "Redis Cluster cannot be connected. Please provide at least one reachable node: x"
    assert replies.is_cluster_unreachable(RedisClusterException(text))
    assert replies.is_cluster_unreachable(SlotNotCoveredError("slot 7 is not covered"))
    unreachable = getattr(redis_exceptions, "RedisClusterUnreachableError", None)
    if unreachable is not None:
        assert replies.is_cluster_unreachable(unreachable("no node answered"))
    # Waiting cannot fix these:
    plain = "Redis Cluster cannot be connected. Please provide at least one reachable node: "
    plain += "Cluster mode is not enabled on this node"  # --redis-cluster for a plain Redis
    assert not replies.is_cluster_unreachable(RedisClusterException(plain))
    assert replies.is_not_a_cluster(RedisClusterException(plain))
    assert not replies.is_cluster_unreachable(ResponseError("ERR unknown command"))
