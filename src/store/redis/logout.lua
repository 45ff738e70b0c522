-- Removes a socket from presence and from all its rooms.
-- KEYS: users, sockets, instance sockets set, rooms set, roster, roster entries
-- ARGV: socket id, room key prefix
-- → {} if the socket is unknown | {display name, last socket (0|1), users online, room left...}
-- Room hashes are derived from the prefix: they share the presence hash tag,
-- so they live in the same cluster slot as the declared keys.
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return {} end
local socket = read_socket(raw)
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
local left = {}
for _, room in ipairs(socket.rooms) do
  local room_key = ARGV[2] .. room
  if redis.call('HINCRBY', room_key, socket.user, -1) <= 0 then
    redis.call('HDEL', room_key, socket.user)
    left[#left + 1] = room
    if redis.call('HLEN', room_key) == 0 then redis.call('SREM', KEYS[4], room) end
  end
end
local user_raw = redis.call('HGET', KEYS[1], socket.user)
if not user_raw then return { socket.user, 1, redis.call('HLEN', KEYS[1]), unpack(left) } end
local user = read_user(user_raw)
user.n = user.n - 1
local last = 0
if user.n <= 0 then
  redis.call('HDEL', KEYS[1], socket.user)
  local entry = redis.call('HGET', KEYS[6], socket.user)
  if entry then
    redis.call('ZREM', KEYS[5], entry)
    redis.call('HDEL', KEYS[6], socket.user)
  end
  last = 1
else
  redis.call('HSET', KEYS[1], socket.user, write_user(user))
end
return { user.name, last, redis.call('HLEN', KEYS[1]), unpack(left) }
