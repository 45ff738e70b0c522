-- Claims (or renews) the right to purge a dead instance: one survivor at a
-- time, until it forgets the instance or the claim expires.
-- KEYS: purge claim
-- ARGV: claimant (this instance's id), milliseconds the claim lasts
-- → 1 if the claim is this instance's, 0 if another survivor holds it
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
