"""The Lua scripts that make each Redis-side step atomic, and their thin wrappers.

Every key a script touches is passed in KEYS and shares one hash tag, so the
scripts are legal on Redis Cluster. A single script call is reloaded by
redis-py on ``NOSCRIPT`` (the script cache is empty after a restart, a
failover or ``SCRIPT FLUSH``). A pipeline is not: redis-py checks scripts only
before its first attempt, so one re-sent after a dropped connection gets
``NOSCRIPT`` for writes that may have been made; and a single call fails if
the cache is emptied again between its reload and its retry. ``run_scripts``
sends script calls pipelined and re-sends exactly those refused with
``NOSCRIPT`` (they did not run) as ``EVAL`` with the script's text, which
needs no cache. Every script call goes through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, OutOfMemoryError, ResponseError

from writebehind.core.errors import RedisOutOfMemory
from writebehind.core.version import Version

# The write path. The ``#!lua`` shebang makes Redis refuse the whole script up
# front when it is over ``maxmemory``, so a write is never half-done. XADD comes
# first: a script that failed after it would still leave no cache change without
# its record. The cache entry is replaced (DEL + HSET), which also drops any
# clean TTL: a dirty entry never expires.
#
# The record names its cache entry (``k``), so that even a record no reader can
# decode can have its entry settled when it is dead-lettered.
#
# The call's nonce is kept in the entry: the same call sent twice (a client
# retrying after a lost reply) returns the first result instead of writing again.
#
# KEYS: stream, cache entry
# ARGV: op, collection, body, expected version ("" any, "-" absent), group, max backlog, nonce
WRITE = """#!lua
local stream, entry = KEYS[1], KEYS[2]
local op, coll, body, expected, group = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local limit, nonce = tonumber(ARGV[6]), ARGV[7]
local seen = redis.call('HMGET', entry, 'n', 'v')
if seen[1] and seen[1] == nonce then
  return {1, seen[2]}
end
if expected ~= '' then
  local current = redis.call('HGET', entry, 'v')
  if expected == '-' then
    if current then return {0, current} end
  elseif current ~= expected then
    return {0, current or '-'}
  end
end
if limit > 0 and redis.call('EXISTS', stream) == 1 then
  local backlog = nil
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info['name'] == group and info['lag'] then
      backlog = info['pending'] + info['lag']
    end
  end
  if backlog == nil then backlog = redis.call('XLEN', stream) end
  if backlog >= limit then
    return redis.error_reply('WBBACKLOG ' .. backlog)
  end
end
local id = redis.call('XADD', stream, '*', 'op', op, 'c', coll, 'd', body, 'k', entry)
redis.call('DEL', entry)
if op == 'del' then
  redis.call('HSET', entry, 'v', id, 't', '1', 'n', nonce)
else
  redis.call('HSET', entry, 'v', id, 'd', body, 'n', nonce)
end
return {1, id}
"""

# Acknowledge persisted records and give their cache entries the clean TTL,
# but only entries still at the persisted version (a newer dirty write keeps
# its entry TTL-free). No shebang: XACK and EXPIRE must still run when Redis is
# at maxmemory, since acking and trimming is how memory is freed.
#
# KEYS: stream, cache entries...
# ARGV: group, ttl seconds, one version per cache entry, then the ids to ack
ACK_AND_CLEAN = """
local n = #KEYS - 1
local ttl = tonumber(ARGV[2])
for i = 1, n do
  if redis.call('HGET', KEYS[i + 1], 'v') == ARGV[2 + i] then
    redis.call('EXPIRE', KEYS[i + 1], ttl)
  end
end
local acked = 0
local first = 3 + n
while first <= #ARGV do
  local last = math.min(first + 999, #ARGV)
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, first, last))
  first = last + 1
end
return acked
"""

# Which stream entries have a letter: a hash, source entry id -> letter id, in
# the dead-letter stream's hash slot (``{wb:pN}:dlq:src``). A scan of the
# dead-letter stream would do the same, but a poison storm leaves it long, and
# a scan per letter would then stall Redis. The index is only a hint: a letter
# named there must still exist (deleted by hand with XDEL, it does not count).
_EXISTING_LETTER = """
local function existing_letter(index, letters, source)
  local known = redis.call('HGET', index, source)
  if known and #redis.call('XRANGE', letters, known, known) > 0 then return known end
  return false
end
"""

# Move one record to the dead-letter stream: XACK here and XADD there, at once.
# Only an entry still pending in the group moves: a move sent again after its
# reply was lost, or a frozen worker's late move of an entry another worker
# has since claimed and finished, adds no second letter (returns 0). Nor does
# a move of an entry a replay has dead-lettered already (returns 1: acked).
# A cache entry still at the dead version is dropped, so reads show what
# MongoDB holds rather than a document it refused.
#
# KEYS: stream, dead-letter stream, cache entry, dead-letter source index
# ARGV: group, entry id, cache version to drop, then the dead letter's field/value pairs
DEAD_LETTER = (
    _EXISTING_LETTER
    + """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
if not existing_letter(KEYS[4], KEYS[2], ARGV[2]) then
  local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
  redis.call('HSET', KEYS[4], ARGV[2], id)
end
if redis.call('HGET', KEYS[3], 'v') == ARGV[3] then
  redis.call('DEL', KEYS[3])
end
return 1
"""
)

# Replay's dead letter: added unless its entry already has one (written by the
# worker, an earlier replay, or a re-drive refused again). No XACK: replay is
# no consumer. Checked and added in one step, so two replays at once still
# leave one letter. A cache entry still at the dead version is dropped.
#
# KEYS: dead-letter stream, its source index, cache entry
# ARGV: source entry id, cache version to drop ("" none), then the letter's field/value pairs
# Returns {1, id of the new letter} or {0, id of the letter already there}
DEAD_LETTER_ONCE = (
    _EXISTING_LETTER
    + """
if ARGV[2] ~= '' and redis.call('HGET', KEYS[3], 'v') == ARGV[2] then
  redis.call('DEL', KEYS[3])
end
local known = existing_letter(KEYS[2], KEYS[1], ARGV[1])
if known then return {0, known} end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
redis.call('HSET', KEYS[2], ARGV[1], id)
return {1, id}
"""
)

# Trim acknowledged history: MINID is the lowest of the retention cutoff, every
# group's last-delivered id (nothing undelivered goes) and every group's oldest
# pending id (nothing unacknowledged goes). In one script, so no group can move
# between the reading and the trimming. A stream no group reads is left alone.
# Every group counts, ours or not: another reader's unread history is not ours
# to drop. So that an abandoned group cannot grow a stream unnoticed, the group
# that set the bound below the cutoff is returned when it is not ours.
#
# KEYS: stream; ARGV: retention cutoff id, our group
# Returns {entries removed, the other group holding trimming back or ''}
TRIM = """
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return {0, ''} end
local bound = ARGV[1]
local holder = ''
for _, g in ipairs(groups) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  if older(info['last-delivered-id'], bound) then
    bound = info['last-delivered-id']
    holder = info['name']
  end
  if info['pending'] > 0 then
    local oldest = redis.call('XPENDING', KEYS[1], info['name'])[2]
    if oldest and older(oldest, bound) then
      bound = oldest
      holder = info['name']
    end
  end
end
if holder == ARGV[2] then holder = '' end
return {redis.call('XTRIM', KEYS[1], 'MINID', bound), holder}
"""

# Remove consumers that left: idle long enough and holding no pending entries.
# Checked and deleted in one step, so no entry is orphaned in between.
#
# KEYS: stream; ARGV: group, minimum idle ms, this worker's consumer name
PRUNE_CONSUMERS = """
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) and info['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    table.insert(removed, info['name'])
  end
end
return removed
"""

ABSENT = "-"
"""Expected-version marker: the cache entry must not exist."""


class BacklogRefused(Exception):
    """Internal: the write script refused a write for backlog; carries the count."""

    def __init__(self, backlog: int) -> None:
        super().__init__(backlog)
        self.backlog = backlog


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What the write script did: wrote ``version``, or saw ``current`` instead of expected."""

    written: bool
    version: Version | None
    current: str | None


def parse_write_reply(reply: Any) -> WriteOutcome:
    status, value = reply
    text = value.decode("ascii") if isinstance(value, bytes) else str(value)
    if int(status) == 1:
        return WriteOutcome(True, Version.parse(text), None)
    return WriteOutcome(False, None, None if text == ABSENT else text)


@dataclass(frozen=True, slots=True)
class LetterOutcome:
    """What the replay dead-letter script did: added a letter, or found one for the entry."""

    added: bool
    letter_id: str


def parse_letter_reply(reply: Any) -> LetterOutcome:
    status, value = reply
    text = value.decode("ascii") if isinstance(value, bytes) else str(value)
    return LetterOutcome(int(status) == 1, text)


def map_script_error(exc: BaseException) -> BaseException:
    """Turn a script's error reply into the exception the caller should see."""
    if isinstance(exc, OutOfMemoryError):
        return RedisOutOfMemory(
            "Redis is at its maxmemory limit and refused the write; nothing was written"
        )
    if isinstance(exc, ResponseError) and str(exc).startswith("WBBACKLOG"):
        return BacklogRefused(int(str(exc).split()[1]))
    return exc


class Scripts:
    """The registered scripts of one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.write: AsyncScript = redis.register_script(WRITE)
        self.ack_and_clean: AsyncScript = redis.register_script(ACK_AND_CLEAN)
        self.dead_letter: AsyncScript = redis.register_script(DEAD_LETTER)
        self.dead_letter_once: AsyncScript = redis.register_script(DEAD_LETTER_ONCE)
        self.trim: AsyncScript = redis.register_script(TRIM)
        self.prune_consumers: AsyncScript = redis.register_script(PRUNE_CONSUMERS)


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
    """
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
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
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


async def call_script(
    redis: Redis, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]
) -> Any:
    """One script call through ``run_scripts``: safe against an emptied script cache."""
    replies, _ = await run_scripts(redis, [ScriptCall(script, keys, args)])
    return replies[0]
