-- Updates aggregation tiles of several entities and, if given, a shard's
-- checkpoint, atomically: every stored field the update was computed from
-- must be unchanged (else -2: read again and retry), and a batch whose last
-- sequence number is already checkpointed is refused (-1), so a replayed
-- batch is never counted twice.
--
-- KEYS[1]: the checkpoint hash; KEYS[2..]: the entity hashes.
-- ARGV: the fencing token (fence.lua; -3 when fenced off), has checkpoint
-- (0/1), sequence number, finished (0/1), records, the time, key ttl
-- seconds, the watermarks ('' for none); then per entity: n, (field,
-- expected value or '' for absent) x n; n, (field, value) x n; n, field x n
-- to delete. The checkpoint's `written_by` keeps the token of the write.
if fenced(KEYS[1]) then return -3 end
local has_cp, seq, ttl = ARGV[1] == '1', ARGV[2], tonumber(ARGV[6])
if has_cp and seq ~= '' then
  local cur = redis.call('HGET', KEYS[1], 'sequence_number')
  if cur and (#seq < #cur or (#seq == #cur and seq <= cur)) then return -1 end
end
local i = 8
for k = 2, #KEYS do
  local n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do
    local cur = redis.call('HGET', KEYS[k], ARGV[i]) or ''
    if cur ~= ARGV[i + 1] then return -2 end
    i = i + 2
  end
  i = i + 1 + 2 * tonumber(ARGV[i])
  i = i + 1 + tonumber(ARGV[i])
end
i = 8
local written = 0
for k = 2, #KEYS do
  i = i + 1 + 2 * tonumber(ARGV[i])
  local n = tonumber(ARGV[i]); i = i + 1
  if n > 0 then
    redis.call('HSET', KEYS[k], unpack(ARGV, i, i + 2 * n - 1))
    written = written + n
  end
  i = i + 2 * n
  n = tonumber(ARGV[i]); i = i + 1
  if n > 0 then redis.call('HDEL', KEYS[k], unpack(ARGV, i, i + n - 1)) end
  i = i + n
  if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) end
end
if has_cp then
  if seq ~= '' then redis.call('HSET', KEYS[1], 'sequence_number', seq) end
  if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'finished', '1') end
  redis.call('HINCRBY', KEYS[1], 'records', ARGV[4])
  redis.call('HSET', KEYS[1], 'updated_at', ARGV[5])
  if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'watermarks', ARGV[7]) end
  if token > 0 then redis.call('HSET', KEYS[1], 'written_by', token) end
end
return written
