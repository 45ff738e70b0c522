-- Records that an instance is alive, stamped with the Redis server's clock
-- (instances' clocks may disagree; Redis's is the one reference), the
-- name its command connections carry (CLIENT SETNAME), by which the others
-- see at once that its process died, and whether it routes room broadcasts
-- (ROUTED_ROOMS: "on" or "off"). All three in one step, so no instance is
-- ever live without its routing entry: one that has none (a version before
-- this entry) reads only the namespace channel.
-- Returns the live instances that do not say "on": live as the purger
-- means it (dead.lua): a heartbeat within the time-to-live. Entries of
-- instances no longer in the sorted set (purged, or gone at shutdown) are
-- removed.
-- KEYS: instances sorted set, connections hash, routing hash
-- ARGV: instance id, connection name, "on" or "off", time-to-live in milliseconds
-- → {registered (1, or 0 if the instance was not: new, or purged as dead),
--    instance id of each other live instance that does not route...}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
local routes = {}
local entries = redis.call('HGETALL', KEYS[3])
for i = 1, #entries, 2 do
  if redis.call('ZSCORE', KEYS[1], entries[i]) then
    routes[entries[i]] = entries[i + 1]
  else
    redis.call('HDEL', KEYS[3], entries[i])
  end
end
local reply = {known and 1 or 0}
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - tonumber(ARGV[4])), '+inf')
for _, id in ipairs(live) do
  if id ~= ARGV[1] and routes[id] ~= 'on' then
    table.insert(reply, id)
  end
end
return reply
