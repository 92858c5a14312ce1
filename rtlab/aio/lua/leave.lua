-- KEYS: members, proc.  ARGV: field, user, channel, the marker if the user is gone
-- (every process tells its members), now as ISO time, then prefix, ns, room, now, ttl,
-- cap, seq ttl, max_seen (keep.lua)
local n = redis.call('HINCRBY', KEYS[1], ARGV[2], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[2])
  last_seen(ARGV[6], ARGV[7], ARGV[8], ARGV[2], ARGV[5], ARGV[10], tonumber(ARGV[13]))
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
touch(ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11]), ARGV[12], true)
return n
