-- This process's sessions written back after Redis was away (it may have lost them all),
-- and its rooms' numbering kept from going back.  KEYS: proc.  ARGV: prefix, channel, "0",
-- now as ISO time, count of entries, entries and their session counts, then "NS ROOM" and
-- the last seq seen here.
local n = tonumber(ARGV[5])
for i = 6, 5 + 2 * n, 2 do
  local ns, room, user = string.match(ARGV[i], '^(%S+) (%S+) (%S+)$')
  redis.call('HINCRBY', ARGV[1] .. ':members:' .. ns .. ':' .. room, user, tonumber(ARGV[i + 1]))
  redis.call('HINCRBY', KEYS[1], ARGV[i], tonumber(ARGV[i + 1]))
end
for i = 6 + 2 * n, #ARGV, 2 do
  local ns, room = string.match(ARGV[i], '^(%S+) (%S+)$')
  local key = ARGV[1] .. ':seq:' .. ns .. ':' .. room
  if tonumber(redis.call('GET', key) or '0') < tonumber(ARGV[i + 1]) then
    redis.call('SET', key, ARGV[i + 1])
  end
end
for _, entry in ipairs(gone) do
  local ns, room, user = string.match(entry, '^(%S+) (%S+) (%S+)$')
  if room ~= '*' and not redis.call('HGET', ARGV[1] .. ':members:' .. ns .. ':' .. room, user) then
    redis.call('HSET', ARGV[1] .. ':seen:' .. ns .. ':' .. room, user, ARGV[4])
    redis.call('PUBLISH', ARGV[2], gone_message(ns, room, user, ARGV[4]))
  end
end
return #gone
