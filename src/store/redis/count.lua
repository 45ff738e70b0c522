-- Counts one attempt in a fixed window (the window starts at the first
-- attempt), unless the window holds `max` attempts already. Atomic: of any
-- number of concurrent callers, on any instance, exactly one sees each
-- count, and no more than `max` are ever counted.
-- KEYS: counter
-- ARGV: window in milliseconds, max
-- → { 1 if counted else 0, the count in this window, milliseconds until it closes }
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local counted = 0
if count < tonumber(ARGV[2]) then
  count = redis.call('INCR', KEYS[1])
  counted = 1
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  -- A new counter (or one that somehow lost its expiry): its window starts now.
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return { counted, count, left }
