"""The read side's Lua scripts: fenced fills and the fill lease, and the invalidator's evictions
and flushes.

Each script's KEYS / ARGV / Returns contract is stated above it; they are called
through ``core.script_calls`` (``EVALSHA``, then ``EVAL`` on ``NOSCRIPT``). The
write side's scripts are in ``core.scripts``, cached computations' in
``core.scripts_computed``.
"""

from __future__ import annotations

from writebehind.core.lua import NOW_MS, OLDER

# -- The read side: fenced fills and the fill lease -----------------------
#
# A cache entry filled from MongoDB is clean: it has a TTL and ``f`` = 1, and
# carries the version MongoDB stored (``_wb.v``; ``0-0`` when MongoDB has no
# document). ``a`` = 1 marks a negative entry (MongoDB holds no document, or a
# tombstone); ``x`` is how long the load took, in ms (XFetch's delta). The
# write script's DEL + HSET replaces any of them, negative entries included.

# Redis time in ms, and the (ms, seq) order of two stream ids (never as text).
_READ_HELPERS = (
    NOW_MS
    + OLDER
    + """
local function entry_reply(head, entry)
  local f = redis.call('HMGET', entry, 'v', 'd', 't', 'a', 'x')
  return {head[1], head[2], f[1], f[2], f[3], f[4], f[5], redis.call('PTTL', entry)}
end
"""
)

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
# A fill whose load began at or before the entry's eviction marker (KEYS[3]:
# Redis ms of the invalidator's last eviction of a direct MongoDB write) is
# refused as 'evicted': its load may predate that write, and it would put the
# old body back under the same version, where no version check can see it. One
# that began at or before the collection's flush marker in this partition
# (KEYS[4]: Redis ms of the invalidator's last emptying of the collection, once
# its resume token was lost) is refused as 'flushed': its load may predate a
# direct write the invalidator never saw, and the flush, which deletes only the
# entries that exist, could not delete a fill that had not landed yet.
#
# Every write deletes the entry's lease (WRITE's KEYS[4]), so a fill still
# finding the lease it started under saw no write during its load, even one
# whose entry has since been persisted and evicted (``volatile-*``): a fill
# over a missing entry is safe only with that check, so every fill names a
# lease token (a token that is not the lease's fills nothing). A process that
# waited past ``lock_timeout`` for a frozen holder loads without a lease of its
# own: it watches the holder's (``watch``): the fill needs the holder's token
# still there, and leaves it there.
#
# KEYS: cache entry, lease, eviction marker, flush marker (all in the entry's slot)
# ARGV: lease token, started ms, max age ms, version, kind ('d' document, 'a'
#       absent), body, ttl ms, load ms, channel, 'watch' (the token is another
#       holder's: checked, not released) or 'own'
# Returns {outcome, Redis time ms, v, d, t, a, x, entry PTTL ms}: outcome is
# 'filled', 'renewed', or why the fill was skipped ('dirty', 'tombstone',
# 'newer', 'late', 'lease_lost', 'evicted', 'flushed'); the entry's fields as
# they are afterwards
FILL = (
    """#!lua
"""
    + _READ_HELPERS
    + """
local entry, lease = KEYS[1], KEYS[2]
local token, started, version, kind = ARGV[1], tonumber(ARGV[2]), ARGV[4], ARGV[5]
local now = now_ms()
local outcome = nil
local held = true
if redis.call('GET', lease) ~= token then
  held = false
elseif ARGV[10] ~= 'watch' then
  redis.call('DEL', lease)
end
if now - started > tonumber(ARGV[3]) then
  outcome = 'late'
end
if outcome == nil then
  local evicted = redis.call('GET', KEYS[3])
  if evicted and tonumber(evicted) >= started then outcome = 'evicted' end
end
if outcome == nil then
  local flushed = redis.call('GET', KEYS[4])
  if flushed and tonumber(flushed) >= started then outcome = 'flushed' end
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

# Before emptying one collection's clean entries in one partition, set the
# collection's flush marker there (Redis ms now, no TTL: one small key per
# partition and collection, never evicted by a ``volatile-*`` policy). It is
# FILL's KEYS[4]: a fill whose load began at or before it is refused
# ('flushed'). Set before the SCAN that finds the entries to delete, not with
# each batch: SCAN may miss a key created while it runs, so a fill that lands
# during the scan must already meet the marker, and one that landed before it
# exists when the scan starts and is found. The shebang makes Redis refuse it
# whole at maxmemory (the invalidator retries) before anything is deleted.
#
# KEYS: flush marker; Returns the marker (Redis ms)
FLUSH_MARK = (
    """#!lua
"""
    + NOW_MS
    + """
local now = now_ms()
redis.call('SET', KEYS[1], now)
return now
"""
)

# Empty one collection's clean cache entries in one partition (the
# invalidator lost its place in the change stream, so any of them may be
# stale), and tell the near caches to empty that collection. Dirty entries
# stay: their writes are newer than anything MongoDB holds. Run after
# FLUSH_MARK: a fill that has not landed yet is not among the keys given, and
# only the marker refuses it.
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
