-- Replaces (or deletes) an account only if it is still the version read:
-- same id ('' for a record written before accounts had ids) and generation.
-- KEYS: account
-- ARGV: expected id, expected generation, new record (JSON; '' deletes)
-- → 1 if replaced, 0 if the account changed or is gone
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
local id = record.id
if type(id) ~= 'string' then id = '' end
local generation = tonumber(record.generation) or 0
if id ~= ARGV[1] or generation ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
