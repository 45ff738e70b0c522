-- Stores a file with a time-to-live, atomically (never a file without expiry).
-- KEYS: file hash
-- ARGV: metadata JSON, bytes, time-to-live in seconds
redis.call('HSET', KEYS[1], 'meta', ARGV[1], 'data', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
