"""Script calls and a trailing ``WAIT`` on one connection per Redis Cluster node.

Redis ``WAIT`` counts the replicas that have every write made *on its own
connection* (https://redis.io/docs/latest/commands/wait/). A redis-py cluster
pipeline groups commands by node, but it re-sends a redirected command alone,
on another connection, and routes a keyless ``WAIT`` to any node on a retry:
such a ``WAIT`` answers for writes it never saw. Here each round sends, to
every node that owns the slot of some calls, those calls and then the
``WAIT`` on one connection of that node (``ClusterNode.execute_pipeline``);
a call is done only with the ``WAIT`` reply of its own round. A call that did
not run, or whose outcome is unknown, goes again in the next round:

- ``NOSCRIPT`` (it did not run; a promoted replica's script cache is empty):
  as ``EVAL`` with the script's text, as ``core.script_calls.run_scripts`` does;
- ``MOVED``, ``CLUSTERDOWN``, a dropped connection or a timeout (the slot's
  master moved or is failing): after a probe through the cluster client,
  which follows the redirection and refreshes its slot map with its own
  retries, and raises when the slot stays unserved;
- ``ASK`` (the slot is being migrated): to the node named, after ``ASKING`` on
  the same connection;
- ``TRYAGAIN`` (keys of a migrating slot split between two nodes): after a pause,
  jittered and growing round by round (``core.backoff``).

A call sent again whose first attempt did run returns its first result (the
write script's nonce) and writes its entry again, so the new round's ``WAIT``
covers the first write too (core/scripts.py, WRITE). A ``WAIT`` that failed
with a dropped connection after its calls were written sends them again for
the same reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio.cluster import ClusterNode, PipelineCommand
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MaxConnectionsError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from writebehind.core.backoff import Backoff
from writebehind.core.redis_client import REFUSED

if TYPE_CHECKING:
    from redis.asyncio.cluster import RedisCluster

    from writebehind.core.script_calls import ScriptCall

ROUNDS = 8
"""Rounds before giving up; each rerouted round first waits for the client's own retries."""
TRYAGAIN_PAUSE = 0.05
"""Seconds before re-sending a call refused with ``TRYAGAIN`` the first time; later rounds
wait longer, jittered (``core.backoff``), up to ``TRYAGAIN_PAUSE_CAP``."""
TRYAGAIN_PAUSE_CAP = 0.2

DONE, NOSCRIPT, ASK, REROUTE, PAUSE = "done", "noscript", "ask", "reroute", "pause"


def verdict(reply: Any) -> str:
    """What to do with one call's reply (or error): one of the constants above."""
    if isinstance(reply, NoScriptError):
        return NOSCRIPT
    if isinstance(reply, MovedError):  # a subclass of AskError: first
        return REROUTE
    if isinstance(reply, AskError):
        return ASK
    if isinstance(reply, TryAgainError):
        return PAUSE
    if isinstance(reply, ClusterDownError | SlotNotCoveredError) or unknown_outcome(reply):
        return REROUTE
    return DONE


def unknown_outcome(error: Any) -> bool:
    """A dropped connection or a timeout: the node may or may not have run what was sent."""
    return isinstance(error, RedisConnectionError | RedisTimeoutError) and not isinstance(
        error, (MaxConnectionsError, *REFUSED)
    )


@dataclass(frozen=True, slots=True)
class _Call:
    index: int
    by_text: bool = False
    ask: ClusterNode | None = None


async def run_scripts_pinned(
    cluster: RedisCluster,
    calls: Sequence[ScriptCall],
    trailing: Sequence[Any],
    *,
    raise_on_error: bool = True,
) -> tuple[list[Any], list[Any]]:
    """``core.script_calls.run_scripts`` on a cluster, with ``trailing`` (``WAIT``) per node.

    Returns the calls' replies in order, and the trailing command's replies:
    one per node and round that finished a call which wrote (all of them
    for the replicas counted by ``WAIT`` to cover every write). When no call
    wrote, ``[0]``: there was nothing to confirm. Error replies are in place
    when ``raise_on_error`` is false, else the first is raised.

    Raises:
        redis.exceptions.RedisError, redis.exceptions.RedisClusterException: a
            node failed and the cluster client could not find the slot's master
            again (the probe's error, or, when calls may have run, the
            connection error that left their outcome unknown); or ``ROUNDS``
            rounds did not finish every call.
    """
    await cluster.initialize()  # a no-op once the client has its slot map
    replies: list[Any] = [None] * len(calls)
    tails: list[Any] = []
    todo = [_Call(i) for i in range(len(calls))]
    last: BaseException | None = None
    unknown: BaseException | None = None  # an error after which calls may have run
    pauses = Backoff(base=TRYAGAIN_PAUSE, cap=TRYAGAIN_PAUSE_CAP)
    for _ in range(ROUNDS):
        if not todo:
            break
        groups: dict[str, tuple[ClusterNode, list[_Call]]] = {}
        try:
            for call in todo:
                node = call.ask or cluster.get_node_from_key(calls[call.index].keys[0])
                assert node is not None
                groups.setdefault(node.name, (node, []))[1].append(call)
        except SlotNotCoveredError as exc:  # a refresh left the slot unserved
            if unknown is not None:
                raise unknown from exc
            raise
        sent = await asyncio.gather(
            *(_send(node, group, calls, trailing) for node, group in groups.values()),
            return_exceptions=True,
        )
        todo, pause = [], False
        reroute: list[_Call] = []
        for (_, group), outcome in zip(groups.values(), sent, strict=True):
            if isinstance(outcome, BaseException):
                if not unknown_outcome(outcome):
                    raise outcome
                last = unknown = outcome
                reroute.extend(_Call(call.index, call.by_text) for call in group)
                continue
            results, tail = outcome
            finished: list[tuple[_Call, Any]] = []
            for call, reply in zip(group, results, strict=True):
                kind = verdict(reply)
                if kind == DONE:
                    finished.append((call, reply))
                elif kind == NOSCRIPT:
                    todo.append(_Call(call.index, by_text=True))
                elif kind == ASK:
                    todo.append(
                        _Call(call.index, call.by_text, cluster.get_node(reply.host, reply.port))
                    )
                else:
                    last = reply
                    if unknown_outcome(reply):
                        unknown = reply
                    pause = pause or kind == PAUSE
                    (todo if kind == PAUSE else reroute).append(_Call(call.index, call.by_text))
            written = [call for call, reply in finished if not isinstance(reply, BaseException)]
            if isinstance(tail, BaseException) and written and unknown_outcome(tail):
                # Written, but whether a replica has it is unknown: again (the nonce).
                last = unknown = tail
                reroute.extend(_Call(call.index, call.by_text) for call in written)
                finished = [(c, r) for c, r in finished if isinstance(r, BaseException)]
            for call, reply in finished:
                replies[call.index] = reply
            if written and not (isinstance(tail, BaseException) and unknown_outcome(tail)):
                tails.append(tail)
        if reroute:
            await _probe(cluster, {calls[call.index].keys[0] for call in reroute}, unknown)
            todo.extend(reroute)
        if pause:
            await asyncio.sleep(pauses.next_delay())
    if todo:
        error = unknown or last
        assert error is not None
        raise error
    if not tails:
        tails.append(0)  # nothing was written: no replica had anything to confirm
    if raise_on_error:
        for reply in (*replies, *tails):
            if isinstance(reply, BaseException):
                raise reply
    return replies, tails


async def _send(
    node: ClusterNode, group: list[_Call], calls: Sequence[ScriptCall], trailing: Sequence[Any]
) -> tuple[list[Any], Any]:
    """One node's calls and ``trailing`` on one connection; their replies (errors in place)."""
    commands: list[PipelineCommand] = []
    positions: list[int] = []
    for call in group:
        script = calls[call.index]
        if call.ask is not None:
            commands.append(PipelineCommand(len(commands), "ASKING"))
        positions.append(len(commands))
        if call.by_text:
            head: tuple[Any, ...] = ("EVAL", script.script.script)
        else:
            head = ("EVALSHA", script.script.sha)
        commands.append(
            PipelineCommand(len(commands), *head, len(script.keys), *script.keys, *script.args)
        )
    commands.append(PipelineCommand(len(commands), *trailing))
    await node.execute_pipeline(commands)
    return [commands[i].result for i in positions], commands[-1].result


async def _probe(cluster: RedisCluster, keys: set[Any], unknown: BaseException | None) -> None:
    """Let the cluster client find each key's master again (it follows ``MOVED`` and
    refreshes its slot map, with its retries); raise when it cannot: ``unknown``
    when given (calls may have run, so their outcome is unknown), else its error."""
    for key in keys:
        try:
            await cluster.pttl(key)
        except (RedisError, RedisClusterException) as exc:
            if unknown is not None:
                raise unknown from exc
            raise
