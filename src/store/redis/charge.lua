-- Charges an amount against a quota in a fixed window (the window starts at
-- the first charge), atomically: the amount is added, and taken back if the
-- total went past the limit, so a refused amount is never counted.
-- KEYS: counter
-- ARGV: amount, limit, window in milliseconds
-- → { 1 if accepted else 0, count in this window, milliseconds until it resets }
local amount = tonumber(ARGV[1])
local used = redis.call('INCRBY', KEYS[1], amount)
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  -- A new counter (or, defensively, one without an expiry): its window starts now.
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  ttl = tonumber(ARGV[3])
end
if used > tonumber(ARGV[2]) then
  used = redis.call('DECRBY', KEYS[1], amount)
  return { 0, used, ttl }
end
return { 1, used, ttl }
