"""Calling registered Lua scripts so that a failover or an emptied script cache loses nothing.

A single script call is reloaded by redis-py on ``NOSCRIPT`` (the script cache
is empty after a restart, a failover or ``SCRIPT FLUSH``). A pipeline is not:
redis-py checks scripts only before its first attempt, so one re-sent after a
dropped connection gets ``NOSCRIPT`` for writes that may have been made; and a
single call fails if the cache is emptied again between its reload and its
retry. ``run_scripts`` sends script calls pipelined and re-sends exactly those
refused with ``NOSCRIPT`` (they did not run) as ``EVAL`` with the script's text,
which needs no cache. Every script call goes through it, or through
``call_script`` (one call: the same rule without a pipeline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from writebehind.core.pinned import run_scripts_pinned
from writebehind.core.redis_client import is_cluster


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One call of a registered script, for ``run_scripts``."""

    script: AsyncScript
    keys: Sequence[Any]
    args: Sequence[Any]


async def run_scripts(
    redis: Redis,
    calls: Sequence[ScriptCall],
    *,
    trailing: Sequence[Any] = (),
    raise_on_error: bool = True,
) -> tuple[list[Any], list[Any]]:
    """Send ``calls`` (then the ``trailing`` command, e.g. ``WAIT``) in one pipeline.

    Returns the calls' replies in order and the trailing command's replies, one
    per round sent. Calls go as ``EVALSHA`` (without redis-py's ``SCRIPT
    EXISTS`` round trip before it); those refused with ``NOSCRIPT`` (they did
    not run) are sent again in a second round as ``EVAL`` with the script's
    text, which needs no script cache and loads it, then the trailing command
    again. Error replies are in place when ``raise_on_error`` is false, else
    the first is raised.

    On a Redis Cluster with a ``trailing`` command, ``core.pinned.run_scripts_pinned``:
    the command once per node, on the connection that carried that node's calls.
    """
    if trailing and is_cluster(redis):
        return await run_scripts_pinned(
            redis,  # type: ignore[arg-type]
            calls,
            trailing,
            raise_on_error=raise_on_error,
        )
    replies: list[Any] = [None] * len(calls)
    tails: list[Any] = []
    todo = list(range(len(calls)))
    for by_text in (False, True):
        pipe = redis.pipeline(transaction=False)
        for i in todo:
            call = calls[i]
            if by_text:
                text: Any = call.script.script
                pipe.eval(text, len(call.keys), *call.keys, *call.args)
            else:
                # Not ``pipe.evalsha``: a cluster pipeline blocks that method, though it
                # routes the command itself by its keys (one slot per call) like any other.
                pipe.execute_command(
                    "EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args
                )
        if trailing:
            pipe.execute_command(*trailing)
        out = await pipe.execute(raise_on_error=False)
        if trailing:
            tails.append(out.pop())
        for i, reply in zip(todo, out, strict=True):
            replies[i] = reply
        todo = [i for i in todo if isinstance(replies[i], NoScriptError)]
        if not todo:
            break
    if raise_on_error:
        for reply in (*replies, *tails):
            if isinstance(reply, BaseException):
                raise reply
    return replies, tails


def fewest_replicas(waits: Sequence[Any]) -> int:
    """Replicas that confirmed every round of a pipeline (``WAIT`` replies; errors raised)."""
    for reply in waits:
        if isinstance(reply, BaseException):
            raise reply
    return min(int(reply) for reply in waits)


async def call_script(
    redis: Redis, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]
) -> Any:
    """One script call: ``EVALSHA``, and on ``NOSCRIPT`` (it did not run) ``EVAL`` with the text.

    What ``run_scripts`` does for one call, without a pipeline: a redis-py
    pipeline cost about 30 µs more per call than the bare command, a fifth of
    an SDK write (docs/benchmarks.md).
    """
    try:
        return await redis.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        text: Any = script.script
        return await redis.eval(text, len(keys), *keys, *args)
