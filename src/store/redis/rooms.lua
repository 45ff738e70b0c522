-- Lists every room with its members, in one consistent snapshot.
-- KEYS: users, rooms set
-- ARGV: room key prefix
-- → {room, member count, member display name..., room, member count, ...}
local result = {}
for _, room in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local names = display_names(KEYS[1], redis.call('HKEYS', ARGV[1] .. room))
  result[#result + 1] = room
  result[#result + 1] = #names
  for _, name in ipairs(names) do result[#result + 1] = name end
end
return result
