-- One page of the roster: up to `count` entries from `min` to `max` (ZRANGEBYLEX
-- bounds). An entry counts only while it is its user's current one and the
-- user is online; others (left behind by an instance from before the roster,
-- which logs out without removing entries) are removed as they are met.
-- KEYS: users, roster, roster entries
-- ARGV: min, max, count
-- → the entries, in order
local out = {}
local want = tonumber(ARGV[3])
local from = ARGV[1]
while #out < want do
  local batch = redis.call('ZRANGEBYLEX', KEYS[2], from, ARGV[2], 'LIMIT', 0, want - #out)
  if #batch == 0 then break end
  for _, entry in ipairs(batch) do
    local key = string.match(entry, '^[^%z]*%z([^%z]*)%z')
    if key and redis.call('HGET', KEYS[3], key) == entry and redis.call('HEXISTS', KEYS[1], key) == 1 then
      out[#out + 1] = entry
    else
      redis.call('ZREM', KEYS[2], entry)
      if key and redis.call('HEXISTS', KEYS[1], key) == 0 then redis.call('HDEL', KEYS[3], key) end
    end
  end
  from = '(' .. batch[#batch]
end
return out
