"""Reading Redis replies: bytes as text, and which error reply is which (no IO).

redis-py returns ``bytes`` unless a client decodes responses (ours never do:
cache entries are BSON), and reports server errors as ``ResponseError`` whose
message starts with the error code Redis sent (``NOGROUP``, ``BUSYGROUP``;
see https://redis.io/docs/latest/develop/reference/protocol-spec/#simple-errors).
These helpers are the one place that knows those codes.
"""

from __future__ import annotations

import asyncio
import os
import traceback
from collections.abc import Mapping
from typing import Any

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, ResponseError, SlotNotCoveredError
from redis.exceptions import TimeoutError as RedisTimeoutError

REDIS_TRANSIENT = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
)
"""Failures of the connection, not of the command: waiting and trying again can help."""

BACKLOG_CODE = "WBBACKLOG"
"""The error code the write script replies with when a partition's backlog is full."""

UNSEEDED_CODE = "WBUNSEEDED"
"""The error code the write script replies with when its partition is not seeded on this
primary (the primary changed: a promotion, a restart); the caller seeds it and re-sends."""


def as_text(value: Any, errors: str = "strict") -> str:
    """A reply value (``bytes`` or not) as ``str``; bytes are UTF-8 (ids and names are ASCII).

    ``errors="replace"`` for text a foreign writer may have put there (a stream
    record added past the SDK); strict raises ``UnicodeDecodeError``.
    """
    return value.decode("utf-8", errors) if isinstance(value, bytes) else str(value)


def field_text(fields: Mapping[bytes, Any], name: bytes) -> str:
    """A stream entry's field as text, ``""`` when absent; bytes that are not UTF-8 are
    replaced (a record added past the SDK, read to be reported or dead-lettered)."""
    return as_text(fields.get(name, b""), errors="replace")


_REDIS_DIR = os.path.dirname(redis.__file__) + os.sep
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
_CONNECTION_CODE = ("connection.py", f"_parsers{os.sep}")


def is_torn_connection(exc: BaseException) -> bool:
    """redis-py used a connection another task had just closed: a lost connection, not a bug.

    During a failover redis-py can close a pooled connection while a command is
    being sent on it (seen on Redis Cluster with redis-py 8.1: the node's
    connections are disconnected while in use; redis-py #3546 is the same on a
    single server). The sender then fails inside redis-py or asyncio with an
    ``AttributeError`` or ``TypeError`` on the closed stream (``'NoneType'
    object has no attribute 'writelines'``) instead of a ``ConnectionError``.
    Recognised by where it was raised: the innermost frame in redis-py or
    asyncio, below a frame of redis-py's connection or reply-parsing code. Any
    other ``AttributeError`` is a bug and stays one.
    """
    if not isinstance(exc, AttributeError | TypeError):
        return False
    files = [frame.f_code.co_filename for frame, _ in traceback.walk_tb(exc.__traceback__)]
    if not files or not files[-1].startswith((_REDIS_DIR, _ASYNCIO_DIR)):
        return False
    return any(f.startswith(_REDIS_DIR) and any(c in f for c in _CONNECTION_CODE) for f in files)


def as_lost_connection(exc: BaseException) -> BaseException:
    """``exc`` as the ``ConnectionError`` it stands for when ``is_torn_connection``, else itself."""
    if not is_torn_connection(exc):
        return exc
    lost = RedisConnectionError(f"connection closed while in use ({type(exc).__name__}: {exc})")
    lost.__cause__ = exc
    return lost


def is_transient(exc: BaseException) -> bool:
    """The connection failed or timed out (the command may or may not have run)."""
    return isinstance(exc, REDIS_TRANSIENT) or is_torn_connection(exc)


_CLUSTER_UNREACHABLE: type[BaseException] | None = getattr(
    redis.exceptions, "RedisClusterUnreachableError", None
)  # redis-py 8 and later; before, a RedisClusterException saying so


def is_cluster_unreachable(exc: BaseException) -> bool:
    """A Redis Cluster client found no node that answers, or a slot no master serves yet
    (a cluster still being formed): waiting can fix both.

    redis-py 8 raises ``RedisClusterUnreachableError``; older versions (the floor is 6.0)
    a bare ``RedisClusterException`` whose text says the cluster cannot be connected."""
    if isinstance(exc, SlotNotCoveredError):
        return True
    if _CLUSTER_UNREACHABLE is not None and isinstance(exc, _CLUSTER_UNREACHABLE):
        return True
    text = str(exc)
    # The same words wrap a node that is no cluster node at all (``--redis-cluster`` given
    # for a plain Redis): waiting cannot fix that one.
    return (
        type(exc) is RedisClusterException
        and "cannot be connected" in text
        and not is_not_a_cluster(exc)
    )


def is_not_a_cluster(exc: BaseException) -> bool:
    """A Redis Cluster client was pointed at a Redis that is not in cluster mode."""
    return isinstance(exc, RedisClusterException) and "Cluster mode is not enabled" in str(exc)


def _has_code(exc: BaseException, code: str) -> bool:
    # Anywhere in the message, not only at its start: a pipeline or a script
    # prefixes the error it relays with where it came from.
    return isinstance(exc, ResponseError) and code in str(exc)


def is_no_group(exc: BaseException) -> bool:
    """``NOGROUP``: the consumer group (or its stream) does not exist."""
    return _has_code(exc, "NOGROUP")


def is_busy_group(exc: BaseException) -> bool:
    """``BUSYGROUP``: ``XGROUP CREATE`` of a group that exists already."""
    return _has_code(exc, "BUSYGROUP")


def is_no_such_key(exc: BaseException) -> bool:
    """``ERR no such key``: an ``XINFO`` of a stream that does not exist (not ``NOGROUP``)."""
    return _has_code(exc, "") and "no such key" in str(exc).lower() and not is_no_group(exc)


TRANSIENT_REPLY_CODES = ("LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")
"""Error replies of a Redis that is there but cannot serve yet: loading its data, a
replica without its master, a slot migrating or a cluster without quorum."""


def is_transient_reply(exc: BaseException) -> bool:
    """An error reply that waiting can fix (``TRANSIENT_REPLY_CODES``): the command did not run."""
    return isinstance(exc, ResponseError) and str(exc).startswith(TRANSIENT_REPLY_CODES)


def is_stream_id_below_top(exc: BaseException) -> bool:
    """``XSETID`` refused: the stream's newest entry is above the id asked for (someone
    added a record meanwhile)."""
    return _has_code(exc, "") and "smaller than the target stream top item" in str(exc)


def is_unseeded(exc: BaseException) -> bool:
    """The write script refused because its partition is not seeded on this primary
    (``WBUNSEEDED <stream>``); nothing was written."""
    return isinstance(exc, ResponseError) and str(exc).startswith(UNSEEDED_CODE)


def backlog_refusal(exc: BaseException) -> int | None:
    """The backlog count of a write the write script refused (``WBBACKLOG <n>``), else None."""
    if not isinstance(exc, ResponseError) or not str(exc).startswith(BACKLOG_CODE):
        return None
    return int(str(exc).split()[1])
