-- This process's sessions written back after Redis was away (it may have lost them all),
-- and its rooms' numbering kept from going back.  KEYS: proc.  ARGV: prefix, channel, "0",
-- now as ISO time, ttl, max_seen, seq ttl, count of entries, entries and their session counts,
-- then "NS ROOM" and the last seq seen here.
local n = tonumber(ARGV[8])
for i = 9, 8 + 2 * n, 2 do
  local ns, room, user = string.match(ARGV[i], '^(%S+) (%S+) (%S+)$')
  local members = ARGV[1] .. ':members:' .. ns .. ':' .. room
  redis.call('HINCRBY', members, user, tonumber(ARGV[i + 1]))
  redis.call('EXPIRE', members, ARGV[5])
  redis.call('HINCRBY', KEYS[1], ARGV[i], tonumber(ARGV[i + 1]))
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
for i = 9 + 2 * n, #ARGV, 2 do
  local ns, room = string.match(ARGV[i], '^(%S+) (%S+)$')
  local key = ARGV[1] .. ':seq:' .. ns .. ':' .. room
  if tonumber(redis.call('GET', key) or '0') < tonumber(ARGV[i + 1]) then
    redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[7])
  end
end
for _, entry in ipairs(gone) do
  local ns, room, user = string.match(entry, '^(%S+) (%S+) (%S+)$')
  if room ~= '*' and not redis.call('HGET', ARGV[1] .. ':members:' .. ns .. ':' .. room, user) then
    last_seen(ARGV[1], ns, room, user, ARGV[4], ARGV[5], tonumber(ARGV[6]))
    redis.call('PUBLISH', ARGV[2], gone_message(ns, room, user, ARGV[4]))
  end
end
return #gone
