-- Publishes one setting of an instance in a registry hash of the
-- deployment (its PARSER in `<prefix>:parsers`) and returns the other live
-- instances' entries. An entry not refreshed within the time-to-live (a
-- stopped or dead instance) is removed. Stamped with the Redis server's
-- clock, as heartbeats are. Instances of earlier versions run their own
-- script on `<prefix>:parsers`, which removes entries not of the form
-- "value ms": keep that form.
-- KEYS: registry hash (instance id → "value milliseconds")
-- ARGV: instance id, value (no space), time-to-live in milliseconds
-- → {instance id, value, ...} of the other live instances
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. now)
local others = {}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local id, entry = entries[i], entries[i + 1]
  local value, at = string.match(entry, '^(%S+) (%d+)$')
  if not at or now - tonumber(at) > ttl then
    redis.call('HDEL', KEYS[1], id)
  elseif id ~= ARGV[1] then
    table.insert(others, id)
    table.insert(others, value)
  end
end
return others
