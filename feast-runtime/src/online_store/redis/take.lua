-- Fences a shard for a new lease owner before it reads the checkpoint:
-- from now on every write with a lower token is refused, so the checkpoint
-- read next is the last one a previous owner can commit. The new token
-- must be above every token the shard has seen: an equal one could be an
-- earlier owner's (a lease table made anew starts its counters again).
--
-- KEYS[1]: the checkpoint hash. ARGV[1]: the new owner's token. Returns
-- {1, token} when the shard is fenced for it, {0, the shard's token} when
-- the token is not above it.
local token = tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'lease') or '0')
if token <= cur then return {0, cur} end
redis.call('HSET', KEYS[1], 'lease', token)
return {1, token}
