-- Room messages into one room, sent in one write of a process's connection: numbered, kept,
-- checked against their mids and published together.
-- KEYS: seq, history, members.  ARGV: first what is the same for every script into the
-- room (the process packs it once: SendBatch): channel, header prefix, frame prefix,
-- frame suffix, size, answer prefix, answer middle, then (keep.lua) prefix, ns, room,
-- ttl, cap, seq ttl, the namespace's history budget in bytes, mid ttl and the five mid
-- limits; then now, and whether to touch the room ("0": this process did within the
-- last second, or a quarter of the TTL if shorter: the rooms' registry orders them by
-- their last use to the second); then the messages, COUNT values each (below): its ref,
-- data head, user and "NS MID" ('' without a mid), and whether to count the room's
-- sessions for it ("0": no ack and no mid wants the count).
-- Returns {seq, sessions} for each message (sessions -1: not counted), or {0, answer}
-- for a resend: a mid's answer is the whole acknowledgement, so a resend that reaches
-- another process gets the same one. One PUBLISH carries them all: the header lists
-- their refs and the last seq, then one frame a line.
local FIRST, COUNT = 23, 5
local prefix, ns, room, now = ARGV[8], ARGV[9], ARGV[10], ARGV[21]
local results, fresh, count = {}, {}, false
for i = FIRST, #ARGV, COUNT do
  local user, field = ARGV[i + 2], ARGV[i + 3]
  local seen = field ~= '' and redis.call('HGET', prefix .. ':mids:' .. user, field)
  if seen then
    results[#results + 1] = {0, seen}
  else
    results[#results + 1] = false
    fresh[#fresh + 1] = i
    count = count or field ~= '' or ARGV[i + 4] == '1'
  end
end
if #fresh == 0 then return results end
local last = redis.call('INCRBY', KEYS[1], #fresh)
local first = last - #fresh + 1
local renewed = false
if ARGV[22] == '1' then  -- else this process touched it within the second: in its place
  renewed = touch(prefix, ns, room, now, ARGV[11], tonumber(ARGV[12]), ARGV[13], false)
end
if first == 1 then  -- the numbering is new: it needs its TTL, whatever touch renewed
  redis.call('EXPIRE', KEYS[1], ARGV[13])
end
local entries, frames, refs = {}, {}, {}
for j, i in ipairs(fresh) do
  local data = ARGV[i + 1] .. (first + j - 1) .. '}'
  entries[j] = (first + j - 1) .. ' ' .. now .. ' ' .. data
  frames[j] = ARGV[3] .. data .. ARGV[4]
  refs[j] = '"' .. ARGV[i] .. '"'
end
keep_messages(prefix, ns, room, entries, tonumber(ARGV[5]), tonumber(ARGV[14]), ARGV[11],
  renewed)
redis.call('PUBLISH', ARGV[1], ARGV[2] .. '"refs":[' .. table.concat(refs, ',') ..
  '],"seq":' .. last .. '}\n' .. table.concat(frames, '\n'))
local sessions = -1
if count then
  sessions = 0
  for _, n in ipairs(redis.call('HVALS', KEYS[3])) do sessions = sessions + tonumber(n) end
end
local j = 0
for k, result in ipairs(results) do
  if not result then
    j = j + 1
    local i, seq = fresh[j], first + j - 1
    local counted = (ARGV[i + 3] ~= '' or ARGV[i + 4] == '1') and sessions or -1
    results[k] = {seq, counted}
    if ARGV[i + 3] ~= '' then
      local answer = ARGV[6] .. seq .. ARGV[7] .. sessions .. '}'
      remember(prefix, ARGV[i + 2], ARGV[i + 3], answer, now, ARGV[15], mid_limits(16))
    end
  end
end
return results
