-- What a room hears when a process taken for dead had the last sessions of a user in it
-- (names are safe: letters, digits, _.-): typing=false first, as a user's typing ends
-- when they leave (the dead process kept their typing state, and its expiry timer).
local function gone_message(ns, room, user, iso)
  return '{"o":"","ns":"' .. ns .. '","room":"' .. room .. '"}\n'
    .. '{"event":"typing","data":{"roomId":"' .. room .. '","userId":"' .. user
    .. '","typing":false},"ns":"' .. ns .. '"}\n'
    .. '{"event":"presence","data":{"roomId":"' .. room .. '","userId":"' .. user
    .. '","online":false,"lastSeen":"' .. iso .. '"},"ns":"' .. ns .. '"}\n'
    .. '{"event":"user-left","data":{"userId":"' .. user .. '","roomId":"' .. room
    .. '"},"ns":"' .. ns .. '"}'
end
