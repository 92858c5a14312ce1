-- KEYS: seq, history, mid, members.  ARGV: channel, header prefix, data head, frame prefix,
-- frame suffix, now, size, answer prefix, answer middle, mid ttl.  The mid's answer is
-- the whole acknowledgement: a resend that reaches another process gets the same one.
if KEYS[3] ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return {0, seen} end
end
local seq = redis.call('INCR', KEYS[1])
local data = ARGV[3] .. seq .. '}'
redis.call('RPUSH', KEYS[2], seq .. ' ' .. ARGV[6] .. ' ' .. data)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[7]), -1)
redis.call('PUBLISH', ARGV[1], ARGV[2] .. seq .. '}\n' .. ARGV[4] .. data .. ARGV[5])
local sessions = 0
for _, count in ipairs(redis.call('HVALS', KEYS[4])) do sessions = sessions + tonumber(count) end
if KEYS[3] ~= '' then
  local answer = ARGV[8] .. seq .. ARGV[9] .. sessions .. '}'
  redis.call('SET', KEYS[3], answer, 'EX', tonumber(ARGV[10]))
end
return {seq, sessions}
