-- KEYS: seq, history, the user's mids ('' without a mid), members.  ARGV: channel, header
-- prefix, data head, frame prefix, frame suffix, now, size, answer prefix, answer middle,
-- then (keep.lua) prefix, ns, room, ttl, cap, seq ttl, the namespace's history budget in
-- bytes, user, "NS MID", mid ttl and the five mid limits; then whether to touch the room
-- ("0": this process did within the last second, or a quarter of the TTL if shorter) and to count its sessions ("0": no ack
-- and no mid wants the count).  The mid's answer is the whole acknowledgement: a resend
-- that reaches another process gets the same one.
if KEYS[3] ~= '' then
  local seen = redis.call('HGET', KEYS[3], ARGV[18])
  if seen then return {0, seen} end
end
local seq = redis.call('INCR', KEYS[1])
local data = ARGV[3] .. seq .. '}'
local renewed = false
if ARGV[25] == '1' then
  renewed = touch(ARGV[10], ARGV[11], ARGV[12], ARGV[6], ARGV[13], tonumber(ARGV[14]),
    ARGV[15], false)
else  -- touched within the second: all touch would do is move it first again
  redis.call('ZADD', ARGV[10] .. ':rooms:' .. ARGV[11], ARGV[6], ARGV[12])
end
if seq == 1 then  -- the numbering is new: it needs its TTL, whatever touch renewed
  redis.call('EXPIRE', KEYS[1], ARGV[15])
end
keep_message(ARGV[10], ARGV[11], ARGV[12], seq .. ' ' .. ARGV[6] .. ' ' .. data,
  tonumber(ARGV[7]), tonumber(ARGV[16]), ARGV[13], renewed)
redis.call('PUBLISH', ARGV[1], ARGV[2] .. seq .. '}\n' .. ARGV[4] .. data .. ARGV[5])
local sessions = -1
if ARGV[26] == '1' or KEYS[3] ~= '' then
  sessions = 0
  for _, count in ipairs(redis.call('HVALS', KEYS[4])) do sessions = sessions + tonumber(count) end
end
if KEYS[3] ~= '' then
  local answer = ARGV[8] .. seq .. ARGV[9] .. sessions .. '}'
  remember(ARGV[10], ARGV[17], ARGV[18], answer, ARGV[6], ARGV[19], mid_limits(20))
end
return {seq, sessions}
