-- Publishes an instance's packet parser (PARSER) and returns the live
-- instances that use another one. An entry not refreshed within the
-- time-to-live (a stopped or dead instance) is removed. Stamped with the
-- Redis server's clock, as heartbeats are.
-- KEYS: parsers hash (instance id → "parser milliseconds")
-- ARGV: instance id, parser, time-to-live in milliseconds
-- → {instance id, parser, ...} of the live instances whose parser differs
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. now)
local others = {}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local id, entry = entries[i], entries[i + 1]
  local parser, at = string.match(entry, '^(%S+) (%d+)$')
  if not at or now - tonumber(at) > ttl then
    redis.call('HDEL', KEYS[1], id)
  elseif id ~= ARGV[1] and parser ~= ARGV[2] then
    table.insert(others, id)
    table.insert(others, parser)
  end
end
return others
