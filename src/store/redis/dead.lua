-- Instances whose last heartbeat is older than the time-to-live.
-- KEYS: instances sorted set
-- ARGV: time-to-live in milliseconds
-- → {instance id...}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
