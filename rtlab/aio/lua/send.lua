-- KEYS: seq, history, mid, members.  ARGV: channel, header prefix, data head, frame prefix,
-- frame suffix, now, size, answer prefix, answer suffix, mid ttl
if KEYS[3] ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {0, seen} end
end
local seq = redis.call('INCR', KEYS[1])
local data = ARGV[3] .. seq .. '}'
redis.call('RPUSH', KEYS[2], seq .. ' ' .. ARGV[6] .. ' ' .. data)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[7]), -1)
if KEYS[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[8] .. seq .. ARGV[9], 'EX', tonumber(ARGV[10]))
end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. seq .. '}\n' .. ARGV[4] .. data .. ARGV[5])
local sessions = 0
for _, count in ipairs(redis.call('HVALS', KEYS[4])) do sessions = sessions + tonumber(count) end
return {seq, sessions}
