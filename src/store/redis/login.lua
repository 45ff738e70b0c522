-- Claims a name for a socket, or adds the socket to the user owning it.
-- KEYS: users, sockets, instance sockets set, roster
-- ARGV: user key, display name, owner proof, socket id, case fold of the display name
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
  user = { n = 1, proof = ARGV[3], name = ARGV[2], fold = ARGV[5] }
  first = 1
  redis.call('ZADD', KEYS[4], 0, roster_entry(user, ARGV[1]))
end
redis.call('HSET', KEYS[1], ARGV[1], write_user(user))
redis.call('HSET', KEYS[2], ARGV[4], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[4])
return { 'ok', user.name, first, redis.call('HLEN', KEYS[1]), user.n }
