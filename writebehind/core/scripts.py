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
needs no cache. Every script call goes through it, or through ``call_script``
(one call: the same rule without a pipeline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, OutOfMemoryError

from writebehind.core.errors import BacklogRefused as BacklogRefused  # re-exported
from writebehind.core.errors import RedisOutOfMemory
from writebehind.core.pinned import run_scripts_pinned
from writebehind.core.redis_client import is_cluster
from writebehind.core.replies import as_text, backlog_refusal
from writebehind.core.version import Version

# XINFO replies are flat [field, value, field, value, ...] lists; the scripts
# read them as tables.
_AS_TABLE = """
local function as_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
"""

# This server's replication id (``master_replid``): new on every promotion of a
# replica and every restart (https://redis.io/docs/latest/operate/oss_and_stack/management/replication/).
_REPLID = """
local function replid()
  return string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)')
end
"""

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
# fill whose load began before this write is refused ('lease_lost', FILL
# below) even when this write's entry is gone by the time the fill arrives:
# persisted by a worker, then evicted under a ``volatile-*`` policy (see
# docs/architecture.md, "The fence").
#
# KEYS: stream, cache entry, the partition's seeded key[, the entry's fill lease]
# ARGV: op, collection, body, expected version ("" any, "-" absent), group, max backlog, nonce,
# shard key values (BSON, "" none: then the record has no 'sk' field, as before it existed)
WRITE = (
    "#!lua\n"
    + _AS_TABLE
    + _REPLID
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
    + _AS_TABLE
    + _REPLID
    + """
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
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
    _AS_TABLE
    + """
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
    _AS_TABLE
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

# -- The read side: fenced fills and the fill lease -----------------------
#
# A cache entry filled from MongoDB is clean: it has a TTL and ``f`` = 1, and
# carries the version MongoDB stored (``_wb.v``; ``0-0`` when MongoDB has no
# document). ``a`` = 1 marks a negative entry (MongoDB holds no document, or a
# tombstone); ``x`` is how long the load took, in ms (XFetch's delta). The
# write script's DEL + HSET replaces any of them, negative entries included.

# Redis time in ms, and the (ms, seq) order of two stream ids (never as text).
_READ_HELPERS = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local function entry_reply(head, entry)
  local f = redis.call('HMGET', entry, 'v', 'd', 't', 'a', 'x')
  return {head[1], head[2], f[1], f[2], f[3], f[4], f[5], redis.call('PTTL', entry)}
end
"""

# Read one cache entry: its fields (sdk/reading/entry.py's ENTRY_FIELDS) and its
# PTTL, in one command and one step (a write between a separate HMGET and PTTL
# would pair one entry's fields with another's TTL). A single read sent as one
# EVALSHA costs about 30 µs less client time than a two-command redis-py
# pipeline (docs/benchmarks.md, "Round 2"). ``no-writes``: it runs at
# maxmemory and on a replica, as HMGET would.
#
# KEYS: cache entry
# Returns {v, d, t, a, x, PTTL ms} (nil for a missing field; PTTL -2: no entry)
READ = """#!lua flags=no-writes
local f = redis.call('HMGET', KEYS[1], 'v', 'd', 't', 'a', 'x')
return {f[1], f[2], f[3], f[4], f[5], redis.call('PTTL', KEYS[1])}
"""

# Take the fill lease of a missing cache entry, so that one process loads it
# from MongoDB while the others wait for the fill's announcement. In one step
# with the check that the entry is missing: a fill that landed in between is
# returned instead. Mode 'r' (early refresh) takes the lease whatever the entry.
#
# KEYS: cache entry, lease
# ARGV: owner token, lease ms, mode ('m' miss, 'r' refresh)
# Returns {status, Redis time ms, v, d, t, a, x, entry PTTL ms}; status 'e' the
# entry exists (its fields follow), 'l' this caller holds the lease, 'w' another
# does: {'w', Redis time ms, the holder's token}
LEASE = (
    """#!lua
"""
    + _READ_HELPERS
    + """
local entry, lease = KEYS[1], KEYS[2]
local now = now_ms()
if ARGV[3] ~= 'r' and redis.call('EXISTS', entry) == 1 then
  return entry_reply({'e', now}, entry)
end
if redis.call('SET', lease, ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then
  return {'l', now}
end
return {'w', now, redis.call('GET', lease)}
"""
)

# The fenced fill: a compare-and-set on the version. The entry is written only
# where it is missing or holds an older clean version; never over a dirty entry
# (no TTL: its write is not in MongoDB yet), a tombstone, or a newer version.
# A clean entry at the same version only gets its TTL renewed. A fill whose
# load began (``started``, Redis time at the miss) more than ``max age`` ago is
# refused as late: an entry written, persisted and expired meanwhile would
# otherwise be replaced by the older version the load read. The lease is
# released only if this caller still owns it (a holder frozen past its lease
# never releases another's), and the end of the fill is announced on the
# entry's channel, so waiting processes need no polling.
#
# A fill whose load began at or before the entry's eviction marker (KEYS[3],
# optional: Redis ms of the invalidator's last eviction of a direct MongoDB
# write) is refused as 'evicted': its load may predate that write, and it
# would put the old body back under the same version, where no version check
# can see it.
#
# Every write deletes the entry's lease (WRITE's KEYS[4]), so a fill still
# finding the lease it started under saw no write during its load, even one
# whose entry has since been persisted and evicted (``volatile-*``): a fill
# over a missing entry is safe only with that check. A process that waited
# past ``lock_timeout`` for a frozen holder loads without a lease of its own:
# it watches the holder's (``watch``): the fill needs the holder's token still
# there, and leaves it there.
#
# KEYS: cache entry, lease[, eviction marker]
# ARGV: token ('' none: no lease check), started ms, max age ms, version, kind
#       ('d' document, 'a' absent), body, ttl ms, load ms, channel[, 'watch':
#       the token is another holder's, checked but not released]
# Returns {outcome, Redis time ms, v, d, t, a, x, entry PTTL ms}: outcome is
# 'filled', 'renewed', or why the fill was skipped ('dirty', 'tombstone',
# 'newer', 'late', 'lease_lost', 'evicted'); the entry's fields as they are afterwards
FILL = (
    """#!lua
"""
    + _READ_HELPERS
    + """
local entry, lease = KEYS[1], KEYS[2]
local token, version, kind = ARGV[1], ARGV[4], ARGV[5]
local now = now_ms()
local outcome = nil
local held = true
if token ~= '' then
  if redis.call('GET', lease) ~= token then
    held = false
  elseif ARGV[10] ~= 'watch' then
    redis.call('DEL', lease)
  end
end
if now - tonumber(ARGV[2]) > tonumber(ARGV[3]) then
  outcome = 'late'
end
if outcome == nil and KEYS[3] then
  local evicted = redis.call('GET', KEYS[3])
  if evicted and tonumber(evicted) >= tonumber(ARGV[2]) then outcome = 'evicted' end
end
local same = false
if outcome == nil and redis.call('EXISTS', entry) == 1 then
  local current = redis.call('HMGET', entry, 'v', 't')
  if redis.call('PTTL', entry) < 0 or not current[1] then
    outcome = 'dirty'
  elseif current[2] then
    outcome = 'tombstone'
  elseif older(version, current[1]) then
    outcome = 'newer'
  elseif current[1] == version then
    same = true
  end
end
-- The entry says nothing against it: the lease must still say no write came.
if outcome == nil and not held then
  outcome = 'lease_lost'
end
if outcome == nil and same then
  redis.call('PEXPIRE', entry, tonumber(ARGV[7]))
  redis.call('HSET', entry, 'x', ARGV[8])
  outcome = 'renewed'
end
if outcome == nil then
  redis.call('DEL', entry)
  if kind == 'a' then
    redis.call('HSET', entry, 'v', version, 'a', '1', 'f', '1', 'x', ARGV[8])
  else
    redis.call('HSET', entry, 'v', version, 'd', ARGV[6], 'f', '1', 'x', ARGV[8])
  end
  redis.call('PEXPIRE', entry, tonumber(ARGV[7]))
  outcome = 'filled'
end
redis.call('PUBLISH', ARGV[9], outcome)
return entry_reply({outcome, now}, entry)
"""
)

# Give a lease back without filling (the load failed, or negative caching is
# off), if this caller still owns it, and wake the waiters to try themselves.
#
# KEYS: lease; ARGV: owner token, channel
# Returns 1 if the lease was released, 0 if it was no longer this caller's
RELEASE = """
local released = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  released = 1
end
redis.call('PUBLISH', ARGV[2], 'released')
return released
"""

# -- Writes that bypass the SDK: the invalidator ---------------------------

# Evict a clean cache entry for a change written to MongoDB directly, and tell
# every near cache through the partition's invalidation stream. A dirty entry
# (no TTL) is left alone: its pending write is newer than the direct change and
# will win. Otherwise, in one step: the eviction marker (Redis ms now) that a
# fill which began at or before it must lose (FILL's KEYS[3]), the record on
# the invalidation stream, and the DEL. The shebang makes Redis refuse the
# whole script at maxmemory, so it is never half-done (the invalidator retries).
# It also deletes the entry's fill lease (KEYS[4], optional), as a write does:
# the marker has a TTL, so a ``volatile-*`` policy may evict it, and the lease
# then still refuses a fill whose load began before this eviction.
#
# KEYS: cache entry, eviction marker, invalidation stream[, the entry's fill lease]
# ARGV: collection, encoded id, marker ttl ms, invalidation stream max length,
#       the change's cluster time (text, for the record)
# Returns {outcome, Redis time ms}: outcome 'dirty' (left alone), 'evicted',
# 'absent' (no entry; marker and record made all the same)
EVICT = (
    """#!lua
"""
    + _READ_HELPERS
    + """
local entry = KEYS[1]
local now = now_ms()
local exists = redis.call('EXISTS', entry) == 1
if exists and redis.call('PTTL', entry) < 0 then
  return {'dirty', now}
end
redis.call('SET', KEYS[2], now, 'PX', tonumber(ARGV[3]))
if KEYS[4] then redis.call('DEL', KEYS[4]) end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', tonumber(ARGV[4]), '*',
  'c', ARGV[1], 'i', ARGV[2], 'ct', ARGV[5])
if exists then
  redis.call('DEL', entry)
  return {'evicted', now}
end
return {'absent', now}
"""
)

# Empty one collection's clean cache entries in one partition (the
# invalidator lost its place in the change stream, so any of them may be
# stale), and tell the near caches to empty that collection. Dirty entries
# stay: their writes are newer than anything MongoDB holds.
#
# KEYS: invalidation stream, then cache entries of one partition
# ARGV: collection, invalidation stream max length
# Returns how many entries were deleted
FLUSH_CLEAN = """
local deleted = 0
for i = 2, #KEYS do
  if redis.call('PTTL', KEYS[i]) >= 0 then
    redis.call('DEL', KEYS[i])
    deleted = deleted + 1
  end
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[2]), '*', 'c', ARGV[1], 'i', '*')
return deleted
"""

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
