-- Take the sessions of one process out of every room.  KEYS: proc.  ARGV: prefix, channel,
-- publish (1/0), now as ISO time, ttl, max_seen, seq ttl.  Returns the "NS ROOM USER" entries whose
-- user is gone.
local gone = {}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local ns, room, user = string.match(entries[i], '^(%S+) (%S+) (%S+)$')
  local members = ARGV[1] .. ':members:' .. ns .. ':' .. room
  if redis.call('HINCRBY', members, user, -tonumber(entries[i + 1])) <= 0 then
    redis.call('HDEL', members, user)
    table.insert(gone, entries[i])
    if ARGV[3] == '1' and room ~= '*' then
      last_seen(ARGV[1], ns, room, user, ARGV[4], ARGV[5], tonumber(ARGV[6]))
      redis.call('PUBLISH', ARGV[2], gone_message(ns, room, user, ARGV[4]))
    end
  end
end
redis.call('DEL', KEYS[1])
