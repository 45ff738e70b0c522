-- Revokes a token until it would have expired, and forgets revocations
-- whose tokens have expired. One sorted set without a TTL, so that a Redis
-- evicting volatile keys under memory pressure cannot un-revoke a token.
-- KEYS: the revocation set
-- ARGV: token id, its expiry (ms since the epoch), now (ms)
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
return 1
