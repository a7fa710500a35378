-- Fencing, for ingest workers that share a stream through shard leases.
-- A write script that calls `fenced` takes the writer's fencing token (its
-- lease counter; 0 for a single ingest process without leases) as ARGV[1],
-- removed here so the script's own arguments start at ARGV[1]. `key` is the
-- shard's checkpoint hash, whose `lease` field keeps the highest token seen.
-- A lower token is refused: the lease was taken over, and the new owner
-- writes from now on. A higher token becomes the field's.
local token = 0
local function fenced(key)
  token = tonumber(table.remove(ARGV, 1))
  if token == 0 then return false end
  local cur = tonumber(redis.call('HGET', key, 'lease') or '0')
  if token < cur then return true end
  if token > cur then redis.call('HSET', key, 'lease', token) end
  return false
end
