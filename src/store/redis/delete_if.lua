-- Deletes a key only if it still holds the value read earlier.
-- KEYS: the key
-- ARGV: the value expected
-- → 1 if deleted, 0 if it changed (or is gone)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
