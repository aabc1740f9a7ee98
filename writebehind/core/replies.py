"""Reading Redis replies: bytes as text, and which error reply is which (no IO).

redis-py returns ``bytes`` unless a client decodes responses (ours never do:
cache entries are BSON), and reports server errors as ``ResponseError`` whose
message starts with the error code Redis sent (``NOGROUP``, ``BUSYGROUP``;
see https://redis.io/docs/latest/develop/reference/protocol-spec/#simple-errors).
These helpers are the one place that knows those codes.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

REDIS_TRANSIENT = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
)
"""Failures of the connection, not of the command: waiting and trying again can help."""

BACKLOG_CODE = "WBBACKLOG"
"""The error code the write script replies with when a partition's backlog is full."""


def as_text(value: Any) -> str:
    """A reply value (``bytes`` or not) as ``str``; bytes are UTF-8 (ids and names are ASCII)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def is_transient(exc: BaseException) -> bool:
    """The connection failed or timed out (the command may or may not have run)."""
    return isinstance(exc, REDIS_TRANSIENT)


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


def backlog_refusal(exc: BaseException) -> int | None:
    """The backlog count of a write the write script refused (``WBBACKLOG <n>``), else None."""
    if not isinstance(exc, ResponseError) or not str(exc).startswith(BACKLOG_CODE):
        return None
    return int(str(exc).split()[1])
