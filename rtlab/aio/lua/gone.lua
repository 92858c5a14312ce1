-- The marker a room's processes read when a process taken for dead had the last sessions
-- of a user in it (names are safe: letters, digits, _.-). Each process tells its own
-- members what that means (Namespace.on_gone: the lab's typing=false, presence, user-left).
local function gone_message(ns, room, user, iso)
  return '{"o":"","ns":"' .. ns .. '","room":"' .. room .. '","kind":"gone","user":"'
    .. user .. '","at":"' .. iso .. '"}'
end
