-- Counts one attempt in a fixed window (the window starts at the first attempt).
-- KEYS: counter
-- ARGV: window in milliseconds
-- → the count so far in this window
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
