-- Count a user's sessions in a namespace (the pseudo-room "*": who is online, for DMs).
-- KEYS: members of "*", proc.  ARGV: field, user, +1 or -1, ttl
local n = redis.call('HINCRBY', KEYS[1], ARGV[2], tonumber(ARGV[3]))
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[2]) end
if redis.call('HINCRBY', KEYS[2], ARGV[1], tonumber(ARGV[3])) <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return n
