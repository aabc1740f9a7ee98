"""Start-up: which failures waiting can fix, and a write-concern check MongoDB answers.

A worker started before its servers (the normal case under Kubernetes or
compose) waits for a server that does not answer; it stops at once, with one
line, for what waiting cannot fix: a wrong password, an ``allkeys-*`` eviction
policy, another partition count, a write concern the deployment cannot satisfy.
"""

from __future__ import annotations

from typing import Any, Literal

from pymongo.errors import ConnectionFailure, OperationFailure, WaitQueueTimeoutError
from pymongo.write_concern import WriteConcern
from redis.exceptions import AuthenticationError, AuthorizationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from writebehind.core.errors import ConfigurationError
from writebehind.core.replies import (
    is_cluster_unreachable,
    is_torn_connection,
    is_transient_reply,
)
from writebehind.settings import named

# MongoDB error codes (src/mongo/base/error_codes.yml): a primary being elected or
# stepping down, a server shutting down or still starting, a write concern timeout.
_TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 262, 10107, 11600, 11602, 13435, 13436, 64})
# ... and a write concern the deployment cannot take, whatever the wait.
_BAD_CONCERN_CODES = frozenset({2, 9, 14, 79, 100})


def unavailable_server(exc: BaseException) -> Literal["redis", "mongodb"] | None:
    """The server ``exc`` says is not answering yet, or None if waiting cannot fix it."""
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return None
    if isinstance(exc, RedisConnectionError | RedisTimeoutError) or is_torn_connection(exc):
        return "redis"
    # ``--redis-cluster``: no node answers yet, or the cluster is still being formed.
    if is_cluster_unreachable(exc):
        return "redis"
    if is_transient_reply(exc):
        return "redis"
    if isinstance(exc, ConnectionFailure | WaitQueueTimeoutError):
        return "mongodb"
    if isinstance(exc, OperationFailure) and (
        exc.code in _TRANSIENT_CODES or exc.has_error_label("RetryableWriteError")
    ):
        return "mongodb"
    return None


async def check_write_concern(database: Any, concern: WriteConcern) -> None:
    """Ask MongoDB to acknowledge a write that changes nothing, with ``concern``.

    A delete that matches no document writes nothing, but the server still
    applies the write concern to it; a concern it cannot satisfy (``w: 2`` on
    a standalone, an unknown tag, ``j`` without journaling) would otherwise
    fail every batch for ever. Raises ``ConfigurationError`` for those.
    """
    try:
        reply = await database.command(
            {
                "delete": "writebehind_startup_probe",
                "deletes": [{"q": {"_id": "writebehind-probe-matches-nothing"}, "limit": 1}],
                "writeConcern": concern.document,
            }
        )
    except OperationFailure as exc:
        if exc.code in _BAD_CONCERN_CODES:
            _refuse(concern, exc.code, str(exc))
        raise
    problem = reply.get("writeConcernError") if isinstance(reply, dict) else None
    if problem and problem.get("code") in _BAD_CONCERN_CODES:
        _refuse(concern, problem.get("code"), str(problem.get("errmsg", "")))
    if problem:
        raise OperationFailure(str(problem.get("errmsg", "")), problem.get("code"), reply)


def _refuse(concern: WriteConcern, code: Any, message: str) -> None:
    raise ConfigurationError(
        f"{named('write_concern')}: MongoDB refuses the write concern {concern.document}: "
        f"{' '.join(message.split())[:200]} (code {code})"
    )
