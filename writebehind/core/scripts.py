"""The write side's Lua scripts, which make each Redis-side step atomic, and their replies.

Every key a script touches is passed in KEYS and shares one hash tag, so the
scripts are legal on Redis Cluster. The write, the seed, ack+clean, the dead
letters, trim and prune are here; the read side's lease, fill, release and read
and the invalidator's evictions in ``core.scripts_read``; cached computations'
in ``core.scripts_computed``. ``Scripts`` registers those a client calls; every
call goes through ``core.script_calls`` (``EVALSHA``, then ``EVAL`` on
``NOSCRIPT``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import OutOfMemoryError

from writebehind.core.errors import BacklogRefused as BacklogRefused  # re-exported
from writebehind.core.errors import RedisOutOfMemory
from writebehind.core.lua import AS_TABLE, OLDER, REPLID
from writebehind.core.replies import as_text, backlog_refusal
from writebehind.core.scripts_read import FILL, LEASE, READ, RELEASE
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
# It still writes the nonce again, which replicates like any write: a ``WAIT``
# on the retry's connection (maybe not the first call's) then waits for a
# replication offset past the first write, so it covers it (``wait_replicas``).
#
# The backlog (our group's pending + lag) is bounded by XLEN first, in O(1):
# every unpersisted record is still an entry of the stream (TRIM never cuts
# above the oldest pending id or the last-delivered id), so XLEN < limit
# proves the backlog is too. Only a stream at least ``limit`` long (retained
# history counts) pays for the exact XINFO GROUPS; it took a third of the
# script's server time on every write (docs/benchmarks.md). Without our group,
# or with its lag unknown after an XDEL, XLEN is the backlog, as before.
#
# A write is refused (``WBUNSEEDED``) until its partition was seeded on this
# primary (SEED below): the seeded key must hold this server's replication id,
# which changes on every promotion and every restart (INFO replication's
# ``master_replid``), so a primary that took over issues no version below one
# MongoDB holds. Checked after the nonce: a call re-sent after it was made
# still gets its first result. INFO is allowed in scripts, and since Redis 7
# scripts replicate as their effects only, so reading it before writing is safe.
#
# The write also deletes the entry's fill lease (KEYS[4], optional), so that a
# fill whose load began before this write is refused ('lease_lost', FILL in
# core/scripts_read.py) even when this write's entry is gone by the time the fill arrives:
# persisted by a worker, then evicted under a ``volatile-*`` policy (see
# docs/architecture.md, "The fence").
#
# KEYS: stream, cache entry, the partition's seeded key[, the entry's fill lease]
# ARGV: op, collection, body, expected version ("" any, "-" absent), group, max backlog, nonce,
# shard key values (BSON, "" none: then the record has no 'sk' field, as before it existed)
WRITE = (
    "#!lua\n"
    + AS_TABLE
    + REPLID
    + """
local stream, entry = KEYS[1], KEYS[2]
local op, coll, body, expected, group = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local limit, nonce = tonumber(ARGV[6]), ARGV[7]
local seen = redis.call('HMGET', entry, 'n', 'v')
if seen[1] and seen[1] == nonce then
  redis.call('HSET', entry, 'n', nonce)
  return {1, seen[2]}
end
if redis.call('GET', KEYS[3]) ~= replid() then
  return redis.error_reply('WBUNSEEDED ' .. stream)
end
if expected ~= '' then
  local current = redis.call('HGET', entry, 'v')
  if expected == '-' then
    if current then return {0, current} end
  elseif current ~= expected then
    return {0, current or '-'}
  end
end
if limit > 0 then
  local backlog = redis.call('XLEN', stream)
  if backlog >= limit then
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
      local info = as_table(g)
      if info['name'] == group and info['lag'] then
        backlog = info['pending'] + info['lag']
      end
    end
    if backlog >= limit then
      return redis.error_reply('WBBACKLOG ' .. backlog)
    end
  end
end
local id
local shard = ARGV[8]
if shard and shard ~= '' then
  id = redis.call('XADD', stream, '*', 'op', op, 'c', coll, 'd', body, 'k', entry, 'sk', shard)
else
  id = redis.call('XADD', stream, '*', 'op', op, 'c', coll, 'd', body, 'k', entry)
end
redis.call('DEL', entry)
if op == 'del' then
  redis.call('HSET', entry, 'v', id, 't', '1', 'n', nonce)
else
  redis.call('HSET', entry, 'v', id, 'd', body, 'n', nonce)
end
if KEYS[4] then redis.call('DEL', KEYS[4]) end
return {1, id}
"""
)

# Seed a partition on this primary: raise its stream's last id to the seed id
# (``core.floor.seed_id``: above every version MongoDB holds) if it is below,
# and record this server's replication id in the seeded key, so the write
# script lets writes through. A missing stream is created empty at the seed id
# (XADD with MAXLEN 0 adds and trims in one command); an existing one is moved
# up with XSETID (https://redis.io/docs/latest/commands/xsetid/), which cannot
# fail here: its top entry is at most its last id, which is below the seed id.
# Nothing is done when the partition is seeded already (another process got
# there first); ARGV[1] '' (no floor document) only marks it seeded.
#
# KEYS: stream, seeded key; ARGV: seed id ('' none)
# Returns 'seeded' (already), 'raised' (the stream's last id moved up) or 'marked'
SEED = (
    "#!lua\n"
    + AS_TABLE
    + REPLID
    + OLDER
    + """
local stream, seeded, target = KEYS[1], KEYS[2], ARGV[1]
local id = replid()
if redis.call('GET', seeded) == id then return 'seeded' end
local outcome = 'marked'
if target ~= '' then
  if redis.call('EXISTS', stream) == 0 then
    redis.call('XADD', stream, 'MAXLEN', '0', target, 'seed', '1')
    outcome = 'raised'
  else
    local last = as_table(redis.call('XINFO', 'STREAM', stream))['last-generated-id']
    if older(last, target) then
      redis.call('XSETID', stream, target)
      outcome = 'raised'
    end
  end
end
redis.call('SET', seeded, id)
return outcome
"""
)

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

# Tell every near cache to drop a dead-lettered document: a record on the
# partition's invalidation stream, the fields EVICT writes (``c`` collection,
# ``i`` encoded id, which is all a near cache reads), with ``dl`` (the letter's
# id) where EVICT has ``ct``. Written by every script that settles a cache entry
# for a dead letter, whether or not the entry was still there: a near cache may
# hold the refused write however the Redis entry went. No record where no
# document is named (a malformed record without its cache entry: coll '').
INVALIDATE_LUA = """
local function invalidate(stream, coll, id, max_len, letter)
  if coll == '' then return end
  redis.call('XADD', stream, 'MAXLEN', '~', tonumber(max_len), '*',
    'c', coll, 'i', id, 'dl', letter)
end
"""

INVALIDATIONS_MAX_LEN = 100_000
"""About how many records (``XADD MAXLEN ~``) an invalidation stream keeps; a near
cache whose feed falls further behind empties itself (sdk/near/follower.py)."""


def invalidation_args(names: tuple[str, str] | None) -> list[Any]:
    """A dead-letter script's ARGV for its invalidation record: collection, encoded id
    (``core.keys.encode_id``), stream max length; ``names`` ``None``: no record."""
    collection, encoded_id = names or ("", "")
    return [collection, encoded_id, INVALIDATIONS_MAX_LEN]


# Move one record to the dead-letter stream: XACK here and XADD there, at once.
# Only an entry still pending in the group moves: a move sent again after its
# reply was lost, or a frozen worker's late move of an entry another worker
# has since claimed and finished, adds no second letter (returns 0). Nor does
# a move of an entry a replay has dead-lettered already (returns 1: acked).
# A cache entry still at the dead version is dropped, so reads show what
# MongoDB holds rather than a document it refused, and near caches are told.
#
# KEYS: stream, dead-letter stream, cache entry, dead-letter source index,
#       invalidation stream
# ARGV: group, entry id, cache version to drop, collection ('' no invalidation
#       record), encoded id, invalidation stream max length, then the dead
#       letter's field/value pairs
# Returns 1 if the entry was pending (moved now, or a letter was there), else 0
DEAD_LETTER = (
    _EXISTING_LETTER
    + INVALIDATE_LUA
    + """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
local letter = existing_letter(KEYS[4], KEYS[2], ARGV[2])
if not letter then
  letter = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 7))
  redis.call('HSET', KEYS[4], ARGV[2], letter)
end
if redis.call('HGET', KEYS[3], 'v') == ARGV[3] then
  redis.call('DEL', KEYS[3])
end
invalidate(KEYS[5], ARGV[4], ARGV[5], ARGV[6], letter)
return 1
"""
)

# Replay's dead letter: added unless its entry already has one (written by the
# worker, an earlier replay, or a re-drive refused again). No XACK: replay is
# no consumer. Checked and added in one step, so two replays at once still
# leave one letter. A cache entry still at the dead version is dropped, and
# near caches are told.
#
# KEYS: dead-letter stream, its source index, cache entry, invalidation stream
# ARGV: source entry id, cache version to drop ("" none), collection ('' no
#       invalidation record), encoded id, invalidation stream max length, then
#       the letter's field/value pairs
# Returns {1, id of the new letter} or {0, id of the letter already there}
DEAD_LETTER_ONCE = (
    _EXISTING_LETTER
    + INVALIDATE_LUA
    + """
if ARGV[2] ~= '' and redis.call('HGET', KEYS[3], 'v') == ARGV[2] then
  redis.call('DEL', KEYS[3])
end
local known = existing_letter(KEYS[2], KEYS[1], ARGV[1])
if known then
  invalidate(KEYS[4], ARGV[3], ARGV[4], ARGV[5], known)
  return {0, known}
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 6))
redis.call('HSET', KEYS[2], ARGV[1], id)
invalidate(KEYS[4], ARGV[3], ARGV[4], ARGV[5], id)
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
TRIM = (
    AS_TABLE
    + OLDER
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, ''} end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return {0, ''} end
local bound = ARGV[1]
local holder = ''
for _, g in ipairs(groups) do
  local info = as_table(g)
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
)

# Remove consumers that left: idle long enough and holding no pending entries.
# Checked and deleted in one step, so no entry is orphaned in between.
#
# KEYS: stream; ARGV: group, minimum idle ms, this worker's consumer name
PRUNE_CONSUMERS = (
    AS_TABLE
    + """
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = as_table(c)
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) and info['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    table.insert(removed, info['name'])
  end
end
return removed
"""
)

ABSENT = "-"
"""Expected-version marker: the cache entry must not exist."""


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What the write script did: wrote ``version``, or saw ``current`` instead of expected."""

    written: bool
    version: Version | None
    current: str | None


def parse_write_reply(reply: Any) -> WriteOutcome:
    status, value = reply
    text = as_text(value)
    if int(status) == 1:
        return WriteOutcome(True, Version.parse(text), None)
    return WriteOutcome(False, None, None if text == ABSENT else text)


def written_version(reply: Any, collection: str, doc_id: Any, deleted: bool = False) -> Version:
    """The version a write with no expected version made (``parse_write_reply``'s
    ``version``, for ``doc_id``); such a write is always made, or refused with an error."""
    status, value = reply
    assert int(status) == 1, reply
    return Version.parse(value, collection, doc_id, deleted)


@dataclass(frozen=True, slots=True)
class LetterOutcome:
    """What the replay dead-letter script did: added a letter, or found one for the entry."""

    added: bool
    letter_id: str


def parse_letter_reply(reply: Any) -> LetterOutcome:
    status, value = reply
    text = as_text(value)
    return LetterOutcome(int(status) == 1, text)


def map_script_error(exc: BaseException) -> BaseException:
    """Turn a script's error reply into the exception the caller should see."""
    if isinstance(exc, OutOfMemoryError):
        return RedisOutOfMemory(
            "Redis is at its maxmemory limit and refused the write; nothing was written"
        )
    backlog = backlog_refusal(exc)
    if backlog is not None:
        return BacklogRefused(backlog)
    return exc


class Scripts:
    """The registered scripts of one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.write: AsyncScript = redis.register_script(WRITE)
        self.seed: AsyncScript = redis.register_script(SEED)
        self.ack_and_clean: AsyncScript = redis.register_script(ACK_AND_CLEAN)
        self.dead_letter: AsyncScript = redis.register_script(DEAD_LETTER)
        self.dead_letter_once: AsyncScript = redis.register_script(DEAD_LETTER_ONCE)
        self.trim: AsyncScript = redis.register_script(TRIM)
        self.prune_consumers: AsyncScript = redis.register_script(PRUNE_CONSUMERS)
        self.lease: AsyncScript = redis.register_script(LEASE)
        self.fill: AsyncScript = redis.register_script(FILL)
        self.release: AsyncScript = redis.register_script(RELEASE)
        self.read: AsyncScript = redis.register_script(READ)
