-- Adds a logged-in socket to a room.
-- KEYS: users, sockets, rooms set, room hash
-- ARGV: socket id, room
-- → {"nologin"} | {"ok", first for user (0|1), member display name...}
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return { 'nologin' } end
local socket = read_socket(raw)
local first = 0
local already = false
for _, room in ipairs(socket.rooms) do
  if room == ARGV[2] then already = true end
end
if not already then
  socket.rooms[#socket.rooms + 1] = ARGV[2]
  redis.call('HSET', KEYS[2], ARGV[1], write_socket(socket))
  if redis.call('HINCRBY', KEYS[4], socket.user, 1) == 1 then first = 1 end
  redis.call('SADD', KEYS[3], ARGV[2])
end
local result = { 'ok', first }
for _, name in ipairs(display_names(KEYS[1], redis.call('HKEYS', KEYS[4]))) do result[#result + 1] = name end
return result
