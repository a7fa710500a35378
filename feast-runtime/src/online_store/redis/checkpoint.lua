-- Advances a checkpoint, only ever forwards; a repeated call (a lost
-- reply, retried) changes nothing, so the record count stays exact.
--
-- KEYS[1]: the checkpoint hash. ARGV: the fencing token (fence.lua),
-- sequence number ('' for none), finished (0/1), records, the time, the
-- watermarks ('' for none). Returns 1, 0 (already there) or -3 (fenced).
if fenced(KEYS[1]) then return -3 end
local seq, finished, records = ARGV[1], ARGV[2], ARGV[3]
if seq ~= '' then
  local cur = redis.call('HGET', KEYS[1], 'sequence_number')
  if cur and (#seq < #cur or (#seq == #cur and seq <= cur)) then return 0 end
  redis.call('HSET', KEYS[1], 'sequence_number', seq)
end
if finished == '1' then redis.call('HSET', KEYS[1], 'finished', '1') end
redis.call('HINCRBY', KEYS[1], 'records', records)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'watermarks', ARGV[5]) end
if token > 0 then redis.call('HSET', KEYS[1], 'written_by', token) end
return 1
