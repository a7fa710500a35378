-- Replaces a view's fields of each entity when the new event is newer.
--
-- KEYS: the shard's checkpoint hash (for the fencing token), then the
-- entity hashes. ARGV: the fencing token (fence.lua), `_ts:view`,
-- `_created:view`, the number of features F, the F field names, the key
-- ttl (0 for none), then per entity: event seconds, event nanos,
-- `created@event` (microseconds each, created -1 for none), the Timestamp
-- bytes, the F values. Returns how many entities were written, or -3 when
-- the token is fenced off (nothing written).
--
-- `_created:view` holds `created@event`: the created time counts only while
-- `_ts:view` still holds that event. A writer that leaves `_created` alone
-- (Feast's own) makes it stale, and a stale one is no created time at all,
-- so it cannot refuse a later write at the same event time.
local function varint(s, pos)
  local result, scale = 0, 1
  while pos <= #s do
    local b = string.byte(s, pos)
    pos = pos + 1
    result = result + (b % 128) * scale
    if b < 128 then break end
    scale = scale * 128
  end
  if result >= 9223372036854775808 then result = result - 18446744073709551616 end
  return result, pos
end
local function timestamp(s)
  local secs, nanos, pos = 0, 0, 1
  while pos <= #s do
    local tag = string.byte(s, pos)
    local v
    v, pos = varint(s, pos + 1)
    if tag == 8 then secs = v elseif tag == 16 then nanos = v end
  end
  return secs, nanos
end
if fenced(table.remove(KEYS, 1)) then return -3 end
local ts_field, created_field = ARGV[1], ARGV[2]
local nf = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4 + nf])
local per = 4 + nf
local written = 0
-- One argument table for every HSET, refilled: no allocation per entity.
local args = {ts_field, false, created_field, false}
for f = 1, nf do
  args[3 + 2 * f] = ARGV[3 + f]
  args[4 + 2 * f] = false
end
for i, key in ipairs(KEYS) do
  local o = 5 + nf + (i - 1) * per
  local secs, nanos = tonumber(ARGV[o]), tonumber(ARGV[o + 1])
  local created = tonumber(string.match(ARGV[o + 2], '^(-?%d+)@'))
  local newer = true
  local cur = redis.call('HGET', key, ts_field)
  if cur then
    local cs, cn = timestamp(cur)
    if secs ~= cs then
      newer = secs > cs
    elseif nanos ~= cn then
      newer = nanos > cn
    else
      local cc = -1
      local cv = redis.call('HGET', key, created_field)
      if cv then
        local c, e = string.match(cv, '^(-?%d+)@(-?%d+)$')
        if c and tonumber(e) == cs * 1000000 + math.floor(cn / 1000) then cc = tonumber(c) end
      end
      newer = created >= cc
    end
  end
  if newer then
    args[2] = ARGV[o + 3]
    args[4] = ARGV[o + 2]
    for f = 1, nf do
      args[4 + 2 * f] = ARGV[o + 3 + f]
    end
    redis.call('HSET', key, unpack(args))
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
    written = written + 1
  end
end
return written
