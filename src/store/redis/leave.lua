-- Removes a socket from a room.
-- KEYS: sockets, rooms set, room hash
-- ARGV: socket id, room
-- → {"nologin"} | {"notin"} | {"ok", last for user (0|1)}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 'nologin' } end
local socket = read_socket(raw)
local kept, found = {}, false
for _, room in ipairs(socket.rooms) do
  if room == ARGV[2] then found = true else kept[#kept + 1] = room end
end
if not found then return { 'notin' } end
socket.rooms = kept
redis.call('HSET', KEYS[1], ARGV[1], write_socket(socket))
local last = 0
if redis.call('HINCRBY', KEYS[3], socket.user, -1) <= 0 then
  redis.call('HDEL', KEYS[3], socket.user)
  last = 1
  if redis.call('HLEN', KEYS[3]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
end
return { 'ok', last }
