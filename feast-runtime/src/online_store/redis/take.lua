-- Fences a shard for a new lease owner before it reads the checkpoint:
-- from now on every write with a lower token is refused, so the checkpoint
-- read next is the last one a previous owner can commit.
--
-- KEYS[1]: the checkpoint hash. ARGV[1]: the new owner's token. Returns the
-- shard's token after the call: the caller's, or a higher one (refused).
fenced(KEYS[1])
return tonumber(redis.call('HGET', KEYS[1], 'lease') or '0')
