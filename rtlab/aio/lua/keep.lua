-- Bounds every script keeps (rtlab/aio/redis_adapter.py's table of keys):
-- * a room's keys live TTL seconds after its last use, its numbering and the namespace's
--   room registry SEQ_TTL seconds;
-- * a namespace keeps the history and last seen of its CAP most recently used rooms and
--   the numbering of twice as many (as rtlab/core/history.py), besides every room someone
--   is in (bounded by the rooms a connection may join), and its history within a budget
--   of bytes: past it the least recently used rooms lose their oldest messages;
-- * a room remembers its MAX_SEEN most recent leavers (as rtlab/core/presence.py);
-- * a user's handled mids are capped by count and bytes, every user's by users and bytes
--   (as rtlab/aio/events.py's hub).
local function room_key(prefix, kind, ns, room)
  return prefix .. ':' .. kind .. ':' .. ns .. ':' .. room
end

-- A namespace's history bytes: room -> bytes of its history's entries, and "*" -> all.
local function sizes_key(prefix, ns)
  return prefix .. ':sizes:' .. ns
end

-- Take ``size`` bytes off a count (never "-0", which HINCRBY refuses).
local function uncount(key, field, size)
  if size ~= 0 then redis.call('HINCRBY', key, field, -size) end
end

local function drop_history(prefix, ns, room)
  local sizes = sizes_key(prefix, ns)
  uncount(sizes, '*', tonumber(redis.call('HGET', sizes, room) or '0'))
  redis.call('HDEL', sizes, room)
  redis.call('DEL', room_key(prefix, 'history', ns, room))
end

-- The oldest message of a room's history goes; false if it had none (expired: what was
-- counted for it goes too).
local function drop_oldest(prefix, ns, room)
  local entry = redis.call('LPOP', room_key(prefix, 'history', ns, room))
  if not entry then
    drop_history(prefix, ns, room)
    return false
  end
  local sizes = sizes_key(prefix, ns)
  redis.call('HINCRBY', sizes, room, -#entry)
  redis.call('HINCRBY', sizes, '*', -#entry)
  return true
end

-- Keep a room's new messages (``entries``, oldest first): its last ``size`` messages, and
-- within the namespace's ``budget`` bytes, the least recently used rooms losing their
-- oldest messages first (as rtlab/core/history.py). Call after ``touch`` (or within the
-- second of one: send.lua), which made this room the most recent and says whether its
-- keys' TTLs were renewed (``renewed``): a key made now gets one too. Messages into a full history cost one RPUSH and one LPOP,
-- whatever the room and however many, and two HINCRBY when they are not as long as the
-- ones they pushed out; only messages that add bytes can take the namespace past its
-- budget.
local function keep_messages(prefix, ns, room, entries, size, budget, ttl, renewed)
  local history = room_key(prefix, 'history', ns, room)
  local sizes = sizes_key(prefix, ns)
  local length = redis.call('RPUSH', history, unpack(entries))
  if length == #entries then redis.call('EXPIRE', history, ttl) end
  local delta = 0
  for _, entry in ipairs(entries) do delta = delta + #entry end
  if length > size then
    for _, old in ipairs(redis.call('LPOP', history, length - size) or {}) do
      delta = delta - #old
    end
  end
  if delta == 0 then  -- a full history, a message as long as the one it pushed out
    if renewed then redis.call('EXPIRE', sizes, ttl) end
    return
  end
  redis.call('HINCRBY', sizes, room, delta)
  local total = redis.call('HINCRBY', sizes, '*', delta)
  if renewed or total == delta then redis.call('EXPIRE', sizes, ttl) end
  local rooms, i = prefix .. ':rooms:' .. ns, 0
  while delta > 0 and total > budget do  -- only what grew can be past the budget
    local victim = redis.call('ZRANGE', rooms, i, i)[1]
    if not victim then break end
    if not drop_oldest(prefix, ns, victim) then i = i + 1 end
    total = tonumber(redis.call('HGET', sizes, '*') or '0')
  end
end

local function empty(prefix, ns, room)
  return redis.call('EXISTS', room_key(prefix, 'members', ns, room)) == 0
end

-- The room is used now: renew its keys (``always``, or once a quarter of their TTL has
-- passed since the room's last use: a message into a busy room renews nothing); the room
-- that just became the CAP+1-th most recently used loses its history and last seen (as
-- Presence keeps CAP rooms'), and one beyond twice CAP is forgotten altogether, unless
-- someone is in it (then its keys live on, renewed by their processes, until the next
-- use puts it first again). A room used within the last second was among the CAP most
-- recent then: its rank is not looked up again (the byte budget bounds what a room
-- pushed out meanwhile keeps), so a busy room's message costs ZSCORE and ZADD here;
-- send.lua does not touch a room its process touched within the second (the registry
-- orders rooms by their last use to the second).
-- Whether the TTLs were renewed.
local function touch(prefix, ns, room, now, ttl, cap, seq_ttl, always)
  local rooms = prefix .. ':rooms:' .. ns
  local last = redis.call('ZSCORE', rooms, room)
  local recent = last and not always and tonumber(now) - tonumber(last) < 1
  local rank = last and not recent and redis.call('ZREVRANK', rooms, room)
  redis.call('ZADD', rooms, now, room)
  local renew = always or not last or tonumber(now) - tonumber(last) >= tonumber(ttl) / 4
  if renew then
    for _, kind in ipairs({'members', 'history', 'seen'}) do
      redis.call('EXPIRE', room_key(prefix, kind, ns, room), ttl)
    end
    redis.call('EXPIRE', room_key(prefix, 'seq', ns, room), seq_ttl)
    redis.call('EXPIRE', rooms, seq_ttl)
  end
  if not recent and (not rank or rank >= cap) then  -- into the CAP most recent: one out
    local stale = redis.call('ZREVRANGE', rooms, cap, cap)[1]
    if stale and empty(prefix, ns, stale) then
      drop_history(prefix, ns, stale)
      redis.call('DEL', room_key(prefix, 'seen', ns, stale))
    end
  end
  if not last then  -- a room more in the registry
    while redis.call('ZCARD', rooms) > 2 * cap do
      local old = redis.call('ZPOPMIN', rooms)[1]
      if empty(prefix, ns, old) then
        drop_history(prefix, ns, old)
        redis.call('DEL', room_key(prefix, 'seq', ns, old), room_key(prefix, 'seen', ns, old))
      end
    end
  end
  return renew
end

-- ``user`` left ``room`` at ``iso``; past max_seen leavers the longest gone is forgotten
-- (ISO times sort as text).
local function last_seen(prefix, ns, room, user, iso, ttl, max_seen)
  local key = room_key(prefix, 'seen', ns, room)
  redis.call('HSET', key, user, iso)
  redis.call('EXPIRE', key, ttl)
  if redis.call('HLEN', key) > max_seen then
    local entries = redis.call('HGETALL', key)
    local oldest, when = nil, nil
    for i = 1, #entries, 2 do
      if when == nil or entries[i + 1] < when then oldest, when = entries[i], entries[i + 1] end
    end
    redis.call('HDEL', key, oldest)
  end
end

-- Keep ``answer`` as the ack of ``user``'s mid ``field`` ("NS MID"), within ``limits``
-- {count, bytes, users, total, ack} (as rtlab/aio/events.py's hub): an ack over ``ack``
-- bytes is kept as a marker; past ``count`` mids or ``bytes`` bytes the user's oldest go;
-- past ``users`` users or ``total`` bytes in all, the least recent users' mids go.
-- midsizes holds user -> bytes and "*" -> all, and outlives the users' own keys; the
-- order list holds "BYTES NS MID", the ack's size with its field. Users are ordered by
-- their last mid to the second, and their keys renewed once a quarter of their TTL has
-- passed: a user's next mid within a second costs EXISTS, HSETNX, RPUSH, two HINCRBY and
-- a ZSCORE (and LPOP, HDEL and one HINCRBY more once they have ``count`` mids).
local function remember(prefix, user, field, answer, now, ttl, limits)
  local kept, order = prefix .. ':mids:' .. user, prefix .. ':midorder:' .. user
  local sizes, users = prefix .. ':midsizes', prefix .. ':midusers'
  if #answer > limits[5] then answer = '{"duplicate":true}' end
  local fresh = redis.call('EXISTS', kept) == 0
  if fresh then  -- expired (or new): what was counted for it goes
    uncount(sizes, '*', tonumber(redis.call('HGET', sizes, user) or '0'))
    redis.call('HDEL', sizes, user)
    redis.call('DEL', order)
  end
  local total = false  -- every user's bytes, when this changed them
  if redis.call('HSETNX', kept, field, answer) == 1 then
    local added, dropped = #field + #answer, 0
    local length = redis.call('RPUSH', order, #answer .. ' ' .. field)
    local size = redis.call('HINCRBY', sizes, user, added)
    while size - dropped > limits[2] or length > limits[1] do
      local old = redis.call('LPOP', order)
      if not old then break end
      length = length - 1
      local bytes, name = string.match(old, '^(%d+) (.*)$')
      if not name then  -- kept before sizes were in the order: read the ack's
        name = old
        bytes = #(redis.call('HGET', kept, old) or '')
      end
      if redis.call('HDEL', kept, name) == 1 then
        dropped = dropped + #name + tonumber(bytes)
      end
    end
    uncount(sizes, user, dropped)
    if added ~= dropped then total = redis.call('HINCRBY', sizes, '*', added - dropped) end
  end
  local last = redis.call('ZSCORE', users, user)
  local age = (fresh or not last) and math.huge or tonumber(now) - tonumber(last)
  local newcomer = false
  if age >= 1 then
    newcomer = redis.call('ZADD', users, now, user) == 1
    if age >= tonumber(ttl) / 4 then
      redis.call('EXPIRE', kept, ttl)
      redis.call('EXPIRE', order, ttl)
      redis.call('EXPIRE', users, ttl)
      redis.call('EXPIRE', sizes, ttl)
    end
  end
  local people = newcomer and redis.call('ZCARD', users)
  while (people and people > limits[3]) or (total and total > limits[4]) do
    local gone = redis.call('ZPOPMIN', users)[1]
    if not gone then break end
    if people then people = people - 1 end
    local bytes = tonumber(redis.call('HGET', sizes, gone) or '0')
    uncount(sizes, '*', bytes)
    if total then total = total - bytes end
    redis.call('HDEL', sizes, gone)
    redis.call('DEL', prefix .. ':mids:' .. gone, prefix .. ':midorder:' .. gone)
  end
end

-- ARGV[first] to ARGV[first + 4]: what ``remember`` takes as its limits.
local function mid_limits(first)
  local limits = {}
  for i = first, first + 4 do table.insert(limits, tonumber(ARGV[i])) end
  return limits
end
