"""The invalidator's retry rule (``worth_retrying``): outages are waited out, the rest raised."""

from __future__ import annotations

import pytest
from pymongo.errors import AutoReconnect, OperationFailure, ServerSelectionTimeoutError
from redis.exceptions import (
    AuthenticationError,
    OutOfMemoryError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from writebehind.tools.invalidation.daemon import worth_retrying


@pytest.mark.parametrize(
    "exc",
    [
        ServerSelectionTimeoutError("no primary"),
        AutoReconnect("connection reset"),
        OperationFailure("history lost", code=286),  # ChangeStreamHistoryLost: start afresh
        RedisConnectionError("refused"),
        ResponseError("LOADING Redis is loading the dataset in memory"),
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'"),
    ],
    ids=type,
)
def test_outages_and_a_lost_resume_token_are_waited_out(exc: BaseException) -> None:
    assert worth_retrying(exc)


@pytest.mark.parametrize(
    "exc",
    [
        OperationFailure("$changeStream is only supported on replica sets", code=40573),
        AuthenticationError("invalid username-password pair"),
        ResponseError("ERR unknown command"),
        KeyError("a bug"),
    ],
    ids=type,
)
def test_what_waiting_cannot_fix_is_raised(exc: BaseException) -> None:
    # (MongoDB's own codes follow sink.classify.is_transient, as every tool's retries do.)
    assert not worth_retrying(exc)
