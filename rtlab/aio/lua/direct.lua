-- A direct message to every session of a user, and to the sender's other sessions.
-- KEYS: members of "*".  ARGV: to, sender, channel, message to them, message to the sender's
local to = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if to <= 0 then return -1 end
local mine = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '1')
redis.call('PUBLISH', ARGV[3], ARGV[4])
redis.call('PUBLISH', ARGV[3], ARGV[5])
return to + mine - 1
