-- Appends a message to a conversation's history and trims it.
-- Every member has score 0 and starts with the 26-character message id, so
-- lexical order is id order and ZRANGE ... BYLEX pages by id.
-- KEYS: history sorted set
-- ARGV: member ("<id> <json>"), history limit, idle expiry in milliseconds
-- Each append pushes the expiry back: a conversation lives that long after
-- its last message (HISTORY_TTL_DAYS).
redis.call('ZADD', KEYS[1], 0, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
