-- KEYS: members, proc, seen.  ARGV: field, user, channel, the marker if the user is gone
-- (every process tells its members), now as ISO time
local n = redis.call('HINCRBY', KEYS[1], ARGV[2], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[5])
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
return n
