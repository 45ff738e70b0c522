-- Takes back one attempt counted in a window that is still open; never
-- below zero, and never recreates a counter whose window closed (DECR on a
-- missing key would leave a counter without an expiry).
-- KEYS: counter
-- → the count left
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then return redis.call('DECR', KEYS[1]) end
return 0
