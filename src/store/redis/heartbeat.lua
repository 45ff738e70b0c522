-- Records that an instance is alive, stamped with the Redis server's clock
-- (instances' clocks may disagree; Redis's is the one reference), and the
-- name its command connections carry (CLIENT SETNAME), by which the others
-- see at once that its process died.
-- KEYS: instances sorted set, connections hash
-- ARGV: instance id, connection name
-- → 1 if the instance was registered, 0 if it was not (new, or purged as dead)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if known then return 1 else return 0 end
