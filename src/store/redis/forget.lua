-- Removes a purged instance from the registry, and releases the purge
-- claim if this instance holds it (a claim that expired and was taken by
-- another survivor stays theirs).
-- KEYS: instances sorted set, connections hash, purge claim
-- ARGV: instance id, claimant (this instance's id)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
return 1
