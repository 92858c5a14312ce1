"""The class's progress in Redis, for servers that share one (``--redis``, ``--workers``).

The same grid and the same rules as rtlab/core/progress.py, kept where every process sees
it, and changed by one Lua script, so that two processes recording at once cannot lose an
attempt. Live ``progress`` events need nothing more: the Redis manager already carries a
namespace's room events to every process. Who is online and the rooms are read from the
manager's keys (docs/architecture.md), so they span the processes too.

=============================  ======  =============================================
key                            type    what
=============================  ======  =============================================
``rtlab:progress:students``    zset    user -> when their grid last changed (a counter)
``rtlab:progress:cells:USER``  hash    ``lesson/exercise`` -> the cell as JSON
``rtlab:progress:columns``     set     the grid's columns: ``lesson/exercise``
``rtlab:progress:tried:KEY``   set     the students with a cell in exercise KEY
``rtlab:progress:clock``       string  the counter
``rtlab:progress:evicted``     string  students evicted for room
``rtlab:progress:replaced``    string  exercises given up for a new one
``rtlab:progress:ignored``     string  reports of exercises past the bound
``rtlab:progress:door:UID``    string  one process's door: refusals, rate limits,
                                       drops, instructors watching (JSON, a TTL of
                                       ``DOOR_TTL``, deleted when the process stops)
=============================  ======  =============================================
"""

from __future__ import annotations

import contextlib
import json
import secrets
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from rtlab.core.progress import (
    FAILING,
    MAX_EXERCISES,
    MAX_RUNS,
    MAX_STUDENTS,
    NOT_TRIED,
    PASSED,
    Report,
    rooms_shown,
)

PREFIX = "rtlab:progress:"
MEMBERS = "rtlab:members:"  # the Redis manager's: NS:ROOM -> user -> sessions; NS:* online
DOOR_TTL = 5  # seconds a process's door figures live unless shared again (every 2 s)

# A cell is {"p": 0|1, "b": base, "r": [[run, highest attempt], ...]}, oldest run first.
RECORD = """
local p, user, key, run = ARGV[1], ARGV[2], ARGV[3], ARGV[6]
local passed, attempt = ARGV[4] == '1', tonumber(ARGV[5])
local max_students, max_exercises = tonumber(ARGV[7]), tonumber(ARGV[8])
local max_runs = tonumber(ARGV[9])
local columns, students = p .. 'columns', p .. 'students'
if redis.call('EXISTS', p .. 'exercises') == 1 then  -- an older rtlab's: who tried what
  for _, old in ipairs(redis.call('SMEMBERS', p .. 'exercises')) do
    redis.call('SADD', columns, old)
  end
  for _, someone in ipairs(redis.call('ZRANGE', students, 0, -1)) do
    for _, old in ipairs(redis.call('HKEYS', p .. 'cells:' .. someone)) do
      redis.call('SADD', p .. 'tried:' .. old, someone)
    end
  end
  redis.call('DEL', p .. 'exercises')
end
if redis.call('SISMEMBER', columns, key) == 0 and redis.call('SCARD', columns) >= max_exercises then
  local alone, victim, most, since = {}, nil, 0, nil  -- user -> the exercises only they tried
  for _, old in ipairs(redis.call('SMEMBERS', columns)) do  -- a count each, not its members
    if redis.call('SCARD', p .. 'tried:' .. old) == 1 then
      local someone = redis.call('SRANDMEMBER', p .. 'tried:' .. old)
      alone[someone] = alone[someone] or {}
      table.insert(alone[someone], old)
    end
  end
  for someone, theirs in pairs(alone) do
    local at = tonumber(redis.call('ZSCORE', students, someone))
    if #theirs > most or (#theirs == most and at < since) then
      victim, most, since = someone, #theirs, at
    end
  end
  if not victim then
    redis.call('INCR', p .. 'ignored')
    return {0, 0, 0}
  end
  table.sort(alone[victim])
  local old = alone[victim][1]
  redis.call('HDEL', p .. 'cells:' .. victim, old)
  redis.call('DEL', p .. 'tried:' .. old)
  redis.call('SREM', columns, old)
  redis.call('INCR', p .. 'replaced')
end
if not redis.call('ZSCORE', students, user) then
  while redis.call('ZCARD', students) >= max_students do
    local oldest = redis.call('ZPOPMIN', students)[1]
    for _, old in ipairs(redis.call('HKEYS', p .. 'cells:' .. oldest)) do
      redis.call('SREM', p .. 'tried:' .. old, oldest)
      if redis.call('EXISTS', p .. 'tried:' .. old) == 0 then redis.call('SREM', columns, old) end
    end
    redis.call('DEL', p .. 'cells:' .. oldest)
    redis.call('INCR', p .. 'evicted')
  end
  redis.call('ZADD', students, redis.call('INCR', p .. 'clock'), user)
end
redis.call('SADD', p .. 'tried:' .. key, user)
redis.call('SADD', columns, key)
local raw = redis.call('HGET', p .. 'cells:' .. user, key)
local cell = raw and cjson.decode(raw) or {p = 0, b = 0, r = {}}
local function total()
  local n = cell.b
  for _, pair in ipairs(cell.r) do n = n + pair[2] end
  return n
end
local before_p, before_n = cell.p, total()
local found = false
for _, pair in ipairs(cell.r) do
  if pair[1] == run then
    if attempt > pair[2] then pair[2] = attempt end
    found = true
  end
end
if not found then
  table.insert(cell.r, {run, attempt})
  if #cell.r > max_runs then
    cell.b = cell.b + cell.r[1][2]
    table.remove(cell.r, 1)
  end
end
if passed then cell.p = 1 end
local after_n = total()
redis.call('HSET', p .. 'cells:' .. user, key, cjson.encode(cell))
local changed = (cell.p ~= before_p or after_n ~= before_n) and 1 or 0
if changed == 1 then  -- only a change counts as the student's last report (as in one process)
  redis.call('ZADD', students, redis.call('INCR', p .. 'clock'), user)
end
return {changed, cell.p, after_n}
"""


def _cell(passed: int, attempts: int) -> dict[str, Any]:
    state = PASSED if passed else FAILING if attempts else NOT_TRIED
    return {"state": state, "attempts": attempts}


class RedisProgress:
    """The grid in Redis: :meth:`record` a report, :meth:`grid` to show; every method may
    raise redis-py's errors (or ``OSError``) while Redis is away."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = PREFIX,
        max_students: int = MAX_STUDENTS,
        max_exercises: int = MAX_EXERCISES,
    ) -> None:
        self.prefix = prefix
        self.max_students = max_students
        self.max_exercises = max_exercises
        self._redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, decode_responses=True
        )
        self._record = self._redis.register_script(RECORD)
        self.uid = secrets.token_hex(6)  # this process, among those sharing the Redis

    async def record(self, report: Report) -> tuple[bool, dict[str, Any]]:
        """Count ``report``: whether its cell changed, and the cell now."""
        args = [
            self.prefix,
            report.user,
            report.key,
            int(report.passed),
            report.attempt,
            report.run,
            self.max_students,
            self.max_exercises,
            MAX_RUNS,
        ]
        changed, passed, attempts = await self._record(keys=[], args=args)
        return bool(changed), _cell(passed, attempts)

    async def grid(self) -> dict[str, Any]:
        """What :meth:`ClassProgress.grid` gives, with ``evicted``, ``replaced`` and
        ``ignored``."""
        p = self.prefix
        users = sorted(await self._redis.zrange(f"{p}students", 0, -1))
        async with self._redis.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.hgetall(f"{p}cells:{user}")
            pipe.smembers(f"{p}columns")
            pipe.smembers(f"{p}exercises")  # an older rtlab's, until the next report
            pipe.get(f"{p}evicted")
            pipe.get(f"{p}replaced")
            pipe.get(f"{p}ignored")
            *cells, columns, older, evicted, replaced, ignored = await pipe.execute()
        students = {}
        for user, raw in zip(users, cells, strict=True):
            row = {}
            for key, text in sorted(raw.items()):
                cell = json.loads(text)
                runs = cell["r"] if isinstance(cell["r"], list) else []
                row[key] = _cell(cell["p"], cell["b"] + sum(n for _, n in runs))
            students[user] = row
        return {
            "exercises": sorted({*columns, *older}),
            "students": students,
            "evicted": int(evicted or 0),
            "replaced": int(replaced or 0),
            "ignored": int(ignored or 0),
        }

    async def online(self) -> set[str]:
        """Users with a connection on any process (the manager's count of namespace /)."""
        return set(await self._redis.hkeys(f"{MEMBERS}/:*"))

    async def rooms(self, skip: str) -> list[dict[str, Any]]:
        """The rooms with members on any process, but those of namespace ``skip``: the
        ones with the most members first, as in one process (``rooms_shown``)."""
        found = []
        async for key in self._redis.scan_iter(match=f"{MEMBERS}*", count=500):
            ns, _, room = key.removeprefix(MEMBERS).rpartition(":")
            if room != "*" and ns != skip:
                found.append((ns, room))
        async with self._redis.pipeline(transaction=False) as pipe:
            for ns, room in found:
                pipe.hlen(f"{MEMBERS}{ns}:{room}")
            sizes = await pipe.execute()
        shown = rooms_shown((n, ns, room) for n, (ns, room) in zip(sizes, found, strict=True))
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, ns, room in shown:
                pipe.hkeys(f"{MEMBERS}{ns}:{room}")
            members = await pipe.execute()
        return [
            {"ns": ns, "room": room, "members": sorted(users)}
            for (_, ns, room), users in zip(shown, members, strict=True)
            if users
        ]

    async def share_door(self, figures: dict[str, Any]) -> None:
        """Keep this process's door figures where the others see them, for DOOR_TTL s."""
        await self._redis.set(f"{self.prefix}door:{self.uid}", json.dumps(figures), ex=DOOR_TTL)

    async def doors(self) -> list[dict[str, Any]]:
        """Every live process's door figures, as shared."""
        keys = [key async for key in self._redis.scan_iter(match=f"{self.prefix}door:*")]
        found = await self._redis.mget(keys) if keys else []
        return [json.loads(text) for text in found if text is not None]

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(f"{self.prefix}door:{self.uid}")
        await self._redis.aclose()
