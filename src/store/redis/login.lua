-- Claims a name for a socket, or adds the socket to the user owning it.
-- KEYS: users, sockets, instance sockets set, roster, roster entries
-- ARGV: user key, display name, owner proof, socket id, roster entry of the display name
-- The roster (a sorted set of "fold\0key\0name" entries, domain/roster.rs)
-- gets the user's entry on their first socket; the entries hash remembers
-- it by user key so that logout can remove it. A user online from before
-- the roster existed gets theirs on their next login under that spelling.
-- → {"ok", display name, first socket (0|1), users online, the user's sockets} | {"taken", display name} | {"already"}
if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 1 then return { 'already' } end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local user, first
if raw then
  user = read_user(raw)
  if user.proof ~= ARGV[3] then return { 'taken', user.name } end
  user.n = user.n + 1
  first = 0
else
  user = { n = 1, proof = ARGV[3], name = ARGV[2] }
  first = 1
end
redis.call('HSET', KEYS[1], ARGV[1], write_user(user))
if first == 1 or (user.name == ARGV[2] and redis.call('HEXISTS', KEYS[5], ARGV[1]) == 0) then
  -- An entry of a user who left through an instance from before the roster.
  local stale = redis.call('HGET', KEYS[5], ARGV[1])
  if stale then redis.call('ZREM', KEYS[4], stale) end
  redis.call('ZADD', KEYS[4], 0, ARGV[5])
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[5])
end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[4])
return { 'ok', user.name, first, redis.call('HLEN', KEYS[1]), user.n }
