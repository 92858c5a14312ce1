-- KEYS: members, proc, seq, history, seen.  ARGV: field, user, channel, header for the
-- user's first session (every process tells its members), header alone, frame prefix,
-- frame suffix, since (-1: none), now, window, how many recent messages for the ack,
-- then prefix, ns, room, ttl, cap, seq ttl (keep.lua)
local n = redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[2], ARGV[15])
if n == 1 then redis.call('HDEL', KEYS[5], ARGV[2]) end
touch(ARGV[12], ARGV[13], ARGV[14], ARGV[9], ARGV[15], tonumber(ARGV[16]), ARGV[17], true)
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
local since = tonumber(ARGV[8])
local now, window = tonumber(ARGV[9]), tonumber(ARGV[10])
local lines, recent = {}, {}
local first = last + 1
for _, entry in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
  local seq, t, data = string.match(entry, '^(%d+) (%S+) (.*)$')
  seq = tonumber(seq)
  if now - tonumber(t) <= window then
    if seq < first then first = seq end
    if since >= 0 and seq > since then table.insert(lines, ARGV[6] .. data .. ARGV[7]) end
    table.insert(recent, data)
  end
end
while #recent > tonumber(ARGV[11]) do table.remove(recent, 1) end
local message = ARGV[5]
if n == 1 then message = ARGV[4] end
if #lines > 0 then message = message .. '\n' .. table.concat(lines, '\n') end
redis.call('PUBLISH', ARGV[3], message)
local complete = 0
if since >= last or since + 1 >= first then complete = 1 end
return {n, redis.call('HKEYS', KEYS[1]), last, #lines, complete, recent,
  redis.call('HGETALL', KEYS[5])}
