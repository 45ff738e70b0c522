-- Shared by every chatwire script (prepended by scripts.rs).
-- Records are newline-separated strings: usernames and room names cannot
-- contain control characters, so "\n" never occurs inside a field.

local function split(s)
  local parts = {}
  for part in string.gmatch(s, '[^\n]+') do parts[#parts + 1] = part end
  return parts
end

-- users hash value: "<socket count>\n<owner proof>\n<display name>"
local function read_user(raw)
  local p = split(raw)
  return { n = tonumber(p[1]), proof = p[2], name = p[3] }
end
local function write_user(u)
  return u.n .. '\n' .. u.proof .. '\n' .. u.name
end

-- sockets hash value: "<user key>\n<room>\n<room>..."
local function read_socket(raw)
  local p = split(raw)
  local rooms = {}
  for i = 2, #p do rooms[#rooms + 1] = p[i] end
  return { user = p[1], rooms = rooms }
end
local function write_socket(s)
  local out = s.user
  for _, room in ipairs(s.rooms) do out = out .. '\n' .. room end
  return out
end

local function display_names(users_key, user_keys)
  local names = {}
  if #user_keys == 0 then return names end
  local raws = redis.call('HMGET', users_key, unpack(user_keys))
  for _, raw in ipairs(raws) do
    if raw then names[#names + 1] = read_user(raw).name end
  end
  return names
end
