"""Lua functions the scripts share, each written once (prepended to a script's text).

``core.scripts``, ``core.scripts_read`` and ``core.scripts_computed`` build their
scripts from these and their own code.
"""

from __future__ import annotations

AS_TABLE = """
local function as_table(flat)
  local t = {}
  for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1] end
  return t
end
"""
"""``as_table(flat)``: an ``XINFO`` reply (a flat field, value, ... list) as a table."""

REPLID = """
local function replid()
  return string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)')
end
"""
"""``replid()``: this server's replication id (``master_replid``), new on every promotion of
a replica and every restart
(https://redis.io/docs/latest/operate/oss_and_stack/management/replication/)."""

OLDER = """
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
"""
"""``older(a, b)``: stream id ``a`` is below ``b``, in (ms, seq) order (never as text)."""

NOW_MS = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""
"""``now_ms()``: Redis time in ms."""
