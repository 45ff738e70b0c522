-- Which of these tokens are revoked (and not yet expired).
-- KEYS: the revocation set
-- ARGV: now (ms since the epoch), then the token ids
-- → one 0 or 1 per token id, in order
local now = tonumber(ARGV[1])
local found = {}
for i = 2, #ARGV do
  local until_ms = redis.call('ZSCORE', KEYS[1], ARGV[i])
  found[i - 1] = (until_ms and tonumber(until_ms) > now) and 1 or 0
end
return found
