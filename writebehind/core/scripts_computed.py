"""The Lua scripts of cached computations (``sdk/computing``), next to ``core/scripts.py``.

Generations (tags, namespaces, the global one) are Redis µs counters: an
invalidation sets one to max(old + 1, now), so it never moves backwards, and a
capture creates an absent one at now (``SET NX``), so nothing ever captures
"absent". A computed entry stores the values its computation captured before
it ran (its stamps); it is served only while every stamp is still the current
value: each generation's, and each dependency document's cache entry ``v``
(the version every SDK write sets in the write script) with a SHA-1 of its
body ``d`` (a direct MongoDB write keeps the version; the entry filled again
afterwards holds the new body under it). An absent generation
key or dependency entry is stale: nothing can tell whether it changed.
A generation key that holds anything but a counter (another Redis type, or text
that is no decimal below 2^53, e.g. written by hand) counts as changed, like an
absent one: CAPTURE and BUMP reset it to Redis µs now and say so (the SDK counts
and logs it); the checks never fail on it.

These scripts touch keys in several hash slots (the dependency entries live in
their partitions' slots): ``cached`` is refused on Redis Cluster. Call them
through ``core.script_calls.call_script`` (NOSCRIPT safe).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from writebehind.core.lua import NOW_MS

_HELPERS = (
    NOW_MS
    + """
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
-- A generation key's value: its counter (decimal µs, text), or false; and whether the
-- key is damaged: it holds another Redis type, or text that is no decimal below 2^53
-- (past it, old + 1 would not move a double). Absent: false, false.
local function generation_of(key)
  local v = redis.pcall('GET', key)
  if v == false then return false, false end
  if type(v) == 'string' and #v <= 16 and string.match(v, '^%d+$')
      and tonumber(v) < 9007199254740992 then
    return v, false
  end
  return false, true
end
local function stamps_of(text)
  local out = {}
  for value in string.gmatch(text, '[^,]+') do out[#out + 1] = value end
  return out
end
-- A dependency's stamp: its cache entry's version and a digest of its body
-- ('/'-joined), false without an entry. The body, because a direct MongoDB
-- write keeps the version: the entry filled again after it holds a new body
-- under the old version.
local function dependency_stamp(key)
  local f = redis.call('HMGET', key, 'v', 'd')
  if not f[1] then return false end
  return f[1] .. '/' .. redis.sha1hex(f[2] or '')
end
-- Whether stored stamps (text) are the current values of KEYS[first..]: the first
-- ngen are generation keys (GET), the rest dependency cache entries (their stamps).
local function verdict(text, first, ngen)
  local values = stamps_of(text)
  if #values ~= #KEYS - first + 1 then return 'shape' end
  for i = 1, #values do
    local key = KEYS[first + i - 1]
    local current
    if i <= ngen then
      current = generation_of(key)  -- false if absent or damaged: stale
    else
      current = dependency_stamp(key)
    end
    if current ~= values[i] then
      if i <= ngen then return 'generation' end
      return 'dependency'
    end
  end
  return 'ok'
end
-- Give a generation key at least ``ttl`` ms to live (never shorten it).
local function outlive(key, ttl)
  local left = redis.call('PTTL', key)
  if left >= 0 and left < ttl then redis.call('PEXPIRE', key, ttl) end
end
"""
)

# Serve a computed entry if all its stamps are current, in one step with the
# check; otherwise, by mode, take the fill lease: 'c' check only, 'm' take it
# if free, 'r' (early refresh) take it if free even if the entry is current,
# 'f' (refresh) take it whatever (a holder's later fill then loses:
# 'lease_lost'). No shebang: a read is still served when Redis is at
# maxmemory (a lease's SET is then refused, before anything was written).
#
# KEYS: entry, lease, generation keys..., dependency cache entries...
# ARGV: mode, owner token, lease ms, number of generation keys, fingerprint
# Returns {'h', now ms, '', body, negative, load ms, pttl, stamps} for a hit, else
# {status, now ms, reason}: status 'm' (mode 'c'), 'l' lease taken, 'w' held
# elsewhere; reason 'miss', 'generation', 'dependency', 'shape' or 'damaged' (the
# key holds another Redis type), '' if current
CHECK = (
    _HELPERS
    + """
local entry, lease = KEYS[1], KEYS[2]
local mode, token, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local f = redis.pcall('HMGET', entry, 'b', 's', 'k', 'a', 'x')
local reason = 'miss'
if f.err then
  reason = 'damaged'  -- not a hash (WRONGTYPE): a fill replaces it
elseif f[2] then
  if f[3] ~= ARGV[5] then
    reason = 'shape'
  else
    reason = verdict(f[2], 3, tonumber(ARGV[4]))
  end
end
if reason == 'ok' then
  if mode == 'c' or mode == 'm' then
    return {'h', now, '', f[1] or '', f[4] or '', f[5] or '', redis.call('PTTL', entry), f[2]}
  end
  reason = ''
end
if mode == 'c' then return {'m', now, reason} end
if mode == 'f' then
  redis.call('SET', lease, token, 'PX', lease_ms)
  return {'l', now, reason}
end
if redis.call('SET', lease, token, 'NX', 'PX', lease_ms) then return {'l', now, reason} end
return {'w', now, reason}
"""
)

# Capture the stamps a computation is about to run under: each generation
# (created at Redis µs now if absent, and given at least ``ttl`` ms to live),
# each dependency cache entry's stamp (version/sha1 of the body; '' if it has
# no entry).
#
# A damaged generation (``generation_of``) is reset to now, as if it were absent.
#
# KEYS: generation keys..., dependency cache entries...
# ARGV: number of generation keys, generation ttl ms
# Returns {the values in KEYS order, the damaged generation keys reset}
CAPTURE = (
    "#!lua\n"
    + _HELPERS
    + """
local ngen, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, reset = {}, {}
for i = 1, #KEYS do
  if i <= ngen then
    local value, damaged = generation_of(KEYS[i])
    if not value then
      value = string.format('%.0f', now_us())
      redis.call('SET', KEYS[i], value, 'PX', ttl)
      if damaged then reset[#reset + 1] = KEYS[i] end
    else
      outlive(KEYS[i], ttl)
    end
    out[i] = value
  else
    out[i] = dependency_stamp(KEYS[i]) or ''
  end
end
return {out, reset}
"""
)

# Store a computed value: only by the holder of the entry's lease (so an
# ``invalidate``, which deletes the lease, beats a computation in flight), and
# only if every stamp it captured is still current (so an invalidation or a
# dependency write during the computation beats it). Announces the end on the
# entry's channel either way, so waiters need no polling.
#
# KEYS: entry, lease, generation keys..., dependency cache entries...
# ARGV: token, number of generation keys, stamps, fingerprint, body, negative
#       ('1' or ''), ttl ms, load ms, channel, generation ttl ms
# Returns 'filled', 'lease_lost', 'stale_generation', 'stale_dependency' or 'stale_shape'
FILL = (
    "#!lua\n"
    + _HELPERS
    + """
local entry, lease = KEYS[1], KEYS[2]
local ngen = tonumber(ARGV[2])
local outcome = nil
if redis.call('GET', lease) == ARGV[1] then
  redis.call('DEL', lease)
else
  outcome = 'lease_lost'
end
if outcome == nil then
  local v = verdict(ARGV[3], 3, ngen)
  if v ~= 'ok' then outcome = 'stale_' .. v end
end
if outcome == nil then
  redis.call('DEL', entry)
  redis.call('HSET', entry, 'b', ARGV[5], 's', ARGV[3], 'k', ARGV[4], 'a', ARGV[6], 'x', ARGV[8])
  redis.call('PEXPIRE', entry, tonumber(ARGV[7]))
  for i = 3, ngen + 2 do outlive(KEYS[i], tonumber(ARGV[10])) end
  outcome = 'filled'
end
redis.call('PUBLISH', ARGV[9], outcome)
return outcome
"""
)

# Give the lease back after a computation whose value is not stored (``cache_if``
# said no, ``None`` without negative caching), and say whether the value is still
# current: the lease still this caller's (``invalidate`` deletes it) and every
# stamp unchanged. The calls that joined the computation in this process share
# the value only then. Wakes the waiters either way.
#
# KEYS: lease, generation keys..., dependency cache entries...
# ARGV: token, number of generation keys, stamps, channel
# Returns 'current', 'lease_lost', 'stale_generation', 'stale_dependency' or 'stale_shape'
RELEASE_CURRENT = (
    _HELPERS
    + """
local held = redis.call('GET', KEYS[1]) == ARGV[1]
if held then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[4], 'released')
if not held then return 'lease_lost' end
local v = verdict(ARGV[3], 2, tonumber(ARGV[2]))
if v ~= 'ok' then return 'stale_' .. v end
return 'current'
"""
)

# Drop one computed entry and its lease (a computation in flight then cannot
# store its value), and wake whoever waits for it.
#
# KEYS: entry, lease; ARGV: channel
# Returns how many of the two keys existed
INVALIDATE = """
local n = redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], 'invalidated')
return n
"""

# Invalidate generations: each present one becomes max(old + 1, Redis µs now),
# its TTL kept. An absent one stays absent: every entry that captured it is
# already stale, and the next capture creates it at now. A damaged one
# (``generation_of``) is reset to now, its TTL kept: every entry stamped under
# it is already stale.
#
# KEYS: generation keys
# Returns {the new values ('' for an absent key), the damaged keys reset}
BUMP = (
    _HELPERS
    + """
local now = now_us()
local out, reset = {}, {}
for i = 1, #KEYS do
  local old, damaged = generation_of(KEYS[i])
  if old or damaged then
    local value = string.format('%.0f', now)
    if old then value = string.format('%.0f', math.max(tonumber(old) + 1, now)) end
    redis.call('SET', KEYS[i], value, 'KEEPTTL')
    if damaged then reset[#reset + 1] = KEYS[i] end
    out[i] = value
  else
    out[i] = ''
  end
end
return {out, reset}
"""
)


class ComputedScripts:
    """The registered scripts of cached computations, for one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.check: AsyncScript = redis.register_script(CHECK)
        self.capture: AsyncScript = redis.register_script(CAPTURE)
        self.fill: AsyncScript = redis.register_script(FILL)
        self.release_current: AsyncScript = redis.register_script(RELEASE_CURRENT)
        self.invalidate: AsyncScript = redis.register_script(INVALIDATE)
        self.bump: AsyncScript = redis.register_script(BUMP)
