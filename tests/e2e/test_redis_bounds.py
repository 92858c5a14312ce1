"""Every Redis key rtlab writes has a TTL or a cap (rtlab/aio/lua/keep.lua).

A real redis-server, real lab servers sharing it and real clients: a class comes and goes
and leaves nothing behind; a room in use keeps its history however quiet; one client
making rooms as fast as the rate limit allows leaves a bounded number of keys; a room's
last seen and a user's mids stay under their caps. TTLs are shortened for the tests.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from rtlab.aio import redis_adapter
from rtlab.aio.client import AckError, EventClient
from rtlab.aio.redis_adapter import KEY_TTL, MID_TTL, SEQ_TTL, RedisAdapter
from rtlab.aio.server import LabServer
from rtlab.core.ratelimit import TokenBucket

TTL = 3  # seconds: every key's TTL in these tests (the heartbeat renews rooms every 1 s)
GUARD = 30.0  # seconds: a hang guard, never a speed requirement


def run(coro, timeout: float = 120):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, timeout))


def adapter(server: LabServer) -> RedisAdapter:
    manager = server.events.manager
    assert isinstance(manager, RedisAdapter)
    return manager


async def started(url: str, **options) -> LabServer:  # type: ignore[no-untyped-def]
    """A lab server on Redis ``url`` whose keys live ``TTL`` seconds after their last use."""
    server = LabServer(redis=url, **options)
    adapter(server).key_ttl = TTL
    adapter(server).seq_ttl = TTL
    adapter(server).mid_ttl = TTL
    return await server.start()


def keys(store: redis.Redis) -> list[str]:
    return sorted(store.scan_iter("rtlab:*", count=1000))


def assert_all_expire(store: redis.Redis) -> list[str]:
    """Every rtlab key has a TTL, at most the longest configured (5 s: a process's alive)."""
    found = keys(store)
    for key in found:
        ttl = store.ttl(key)
        assert ttl != -1, f"{key} never expires"
        assert ttl <= max(TTL, 5), f"{key} expires in {ttl} s"
    return found


def family(key: str) -> str:
    return key.split(":")[1]


async def until_gone(store: redis.Redis, keep: set[str], what: str) -> None:
    """Wait (hang guard) until the rtlab keys are exactly ``keep``."""
    deadline = time.monotonic() + TTL + GUARD
    while set(keys(store)) != keep:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {sorted(set(keys(store)) - keep)[:10]}")
        await asyncio.sleep(0.2)


def test_a_class_comes_and_goes_and_leaves_no_key_behind(redis_server):
    store = redis_server.client()
    users = [f"u{i:02}" for i in range(30)]

    def rooms_of(i: int) -> list[str]:
        return sorted({f"room{(i + step) % 10}" for step in (0, 3, 7)})

    async def scenario() -> None:
        servers = [await started(redis_server.url), await started(redis_server.url)]
        clients = [
            await EventClient.connect(servers[i % 2].url, user) for i, user in enumerate(users)
        ]

        async def attend(i: int, client: EventClient) -> None:
            mine = rooms_of(i)
            for room in mine:
                await client.emit("join-room", room, ack=True)
            await client.emit("connect", ns="/chat", ack=True)
            await client.emit("join-room", "corridor", ns="/chat", ack=True)
            for n, room in enumerate(mine):
                text = {"roomId": room, "message": f"{client.user} says {n}"}
                await client.emit("send-message", text, ack=True, mid=f"m{n}")
            await client.emit("typing", {"roomId": mine[0], "typing": True}, ack=True)
            await client.emit("heartbeat", ack=True, mid="beat")
            neighbour = users[(i + 1) % len(users)]
            await client.emit("direct-message", {"to": neighbour, "message": "hi"}, ack=True)
            await client.emit("typing", {"roomId": mine[0], "typing": False}, ack=True)

        await asyncio.gather(*(attend(i, c) for i, c in enumerate(clients)))
        in_class = assert_all_expire(store)
        assert {family(k) for k in in_class} >= {
            "members", "proc", "alive", "procs", "seq", "history", "rooms", "mids", "midorder",
            "midusers",
        }  # fmt: skip

        # A quiet room in use outlives its TTL: its history is still there for a newcomer.
        await asyncio.sleep(2 * TTL)
        late = await EventClient.connect(servers[0].url, "late")
        answer = await late.emit("join-room", "room0", ack=True)
        sent = sum("room0" in rooms_of(i) for i in range(len(users)))  # one each
        assert answer["seq"] == len(answer["history"]) == sent > 0
        await late.close()

        # Half leave their rooms, half just go; some leave seen hashes behind, with TTLs.
        for i, client in enumerate(clients):
            if i % 2:
                for room in rooms_of(i):
                    await client.emit("leave-room", room, ack=True)
            await client.close()
        assert "seen" in {family(k) for k in assert_all_expire(store)}

        # Once the TTLs pass, only the running processes' own keys are left ...
        alive = {f"rtlab:alive:{adapter(s).uid}" for s in servers}
        doors = {f"rtlab:progress:door:{s.progress.store.uid}" for s in servers}  # /teacher's
        await until_gone(store, alive | doors | {"rtlab:procs"}, "the class has gone")
        assert_all_expire(store)
        # ... and nothing at all once they stop.
        for server in servers:
            await server.stop()
        await until_gone(store, set(), "the servers have stopped")

    run(scenario())


def test_one_client_making_rooms_as_fast_as_allowed_leaves_a_bounded_number_of_keys(
    redis_server,
):
    store = redis_server.client()
    cap = 6  # rooms per namespace whose history Redis keeps (RedisAdapter.max_rooms)
    per_connection = 5  # rooms one connection may be in (LabServer max_rooms)

    async def scenario() -> None:
        server = await started(
            redis_server.url, rate_limit=TokenBucket(40, 50), max_rooms=per_connection
        )
        adapter(server).max_rooms = cap
        bob = await EventClient.connect(server.url, "bob")  # in a quiet class room
        await bob.emit("join-room", "class", ack=True)
        await bob.emit("send-message", {"roomId": "class", "message": "notes"}, ack=True)
        eve = await EventClient.connect(server.url, "eve")

        async def insist(event: str, data: object) -> object:
            while True:
                try:
                    return await eve.emit(event, data, ack=True)
                except AckError as error:
                    if error.code != "rate_limited":
                        raise
                    await asyncio.sleep(0.05)

        # The rooms a connection may be in: as in one process.
        for n in range(per_connection):
            await insist("join-room", f"held{n}")
        with pytest.raises(AckError) as refused:
            await insist("join-room", "one-too-many")
        assert refused.value.code == "limit_exceeded"
        for n in range(per_connection):
            await insist("leave-room", f"held{n}")

        # Then a new room every time: join, write, leave, for a bounded time.
        made, deadline = 0, time.monotonic() + 4
        while time.monotonic() < deadline:
            room = f"spam{made}"
            await insist("join-room", room)
            await insist("send-message", {"roomId": room, "message": "x"})
            await insist("leave-room", room)
            made += 1
        assert made > 4 * cap  # the caps had work to do

        found = assert_all_expire(store)
        count = {kind: sum(family(k) == kind for k in found) for kind in map(family, found)}
        # History and last seen of the cap's most recent rooms and of rooms someone is in
        # (class); numbering of twice as many; per namespace, one registry each.
        assert count["history"] <= cap + 1
        assert count["seq"] <= 2 * cap + 1
        assert count.get("seen", 0) <= cap + 1
        assert len(found) <= 4 * cap + 12, found  # + members, proc, alive, procs, rooms...

        late = await EventClient.connect(server.url, "late")  # class kept its history
        answer = await late.emit("join-room", "class", ack=True)
        assert [m["message"] for m in answer["history"]] == ["notes"]
        for client in (bob, eve, late):
            await client.close()
        await server.stop()
        await until_gone(store, set(), "the attack has gone")

    run(scenario())


def test_a_rooms_last_seen_and_a_users_mids_stay_under_their_caps(redis_server):
    store = redis_server.client()

    async def scenario() -> None:
        server = await started(redis_server.url)
        manager = adapter(server)
        manager.max_seen = 3
        # mids per user and their bytes; users, every user's bytes; the largest ack kept
        manager.mid_limits = (4, 600, 2, 10**6, 100)
        leavers = [f"left{n}" for n in range(6)]
        for user in leavers:
            client = await EventClient.connect(server.url, user)
            await client.emit("join-room", "hall", ack=True)
            await client.emit("leave-room", "hall", ack=True)
            await client.close()
        seen = store.hgetall("rtlab:seen:/:hall")
        assert sorted(seen) == leavers[-3:]  # the longest gone forgotten first

        alice = await EventClient.connect(server.url, "alice")

        async def written() -> None:
            """What this server queued for Redis is done: a join's answer comes after."""
            await alice.emit("join-room", "hall", ack=True)

        def sizes() -> dict[str, int]:
            return {user: int(n) for user, n in store.hgetall("rtlab:midsizes").items()}

        await written()
        for n in range(10):
            data = {"roomId": "hall", "message": f"m{n}"}
            await alice.emit("send-message", data, ack=True, mid=f"a{n}")
            await alice.emit("heartbeat", ack=True, mid=f"h{n}")
            await written()
            kept = store.hgetall("rtlab:mids:alice")
            assert len(kept) <= 4 and store.llen("rtlab:midorder:alice") == len(kept)
            size = sum(len(k) + len(v) for k, v in kept.items())
            assert sizes() == {"alice": size, "*": size} and size <= 600
        assert "/ h9" in kept  # the newest are kept
        assert store.hget("rtlab:mids:alice", "/ h9").startswith('{"time":')  # kept whole
        manager.mid_limits = (4, 600, 2, 10**6, 10)  # now every ack is too big to keep
        await alice.emit("heartbeat", ack=True, mid="marked")
        await written()
        assert store.hget("rtlab:mids:alice", "/ marked") == '{"duplicate":true}'
        manager.mid_limits = (4, 600, 2, 10**6, 100)

        for user in ("carol", "dave"):  # past two users, the least recent user's go
            client = await EventClient.connect(server.url, user)
            await client.emit("heartbeat", ack=True, mid="x")
            await client.close()
        await written()
        assert store.zrange("rtlab:midusers", 0, -1) == ["carol", "dave"]
        assert not store.exists("rtlab:mids:alice", "rtlab:midorder:alice")
        assert sizes()["*"] == sizes()["carol"] + sizes()["dave"]

        manager.mid_limits = (4, 600, 10, sizes()["*"] + 5, 100)  # erin's: past all bytes
        client = await EventClient.connect(server.url, "erin")
        await client.emit("heartbeat", ack=True, mid="y")
        await client.close()
        await written()
        assert store.zrange("rtlab:midusers", 0, -1) == ["dave", "erin"]  # carol's went
        assert sizes()["*"] == sizes()["dave"] + sizes()["erin"]
        assert_all_expire(store)
        await alice.close()
        await server.stop()

    run(scenario())


def test_mids_kept_before_the_order_held_their_sizes_still_go_in_order(redis_server):
    """An order list written by an older rtlab (fields only, no sizes) is read as well."""
    store = redis_server.client()
    ack = '{"delivered":1}'
    store.hset("rtlab:mids:alice", "/ old", ack)
    store.rpush("rtlab:midorder:alice", "/ old")
    store.hset("rtlab:midsizes", mapping={"alice": 5 + len(ack), "*": 5 + len(ack)})
    for key in ("rtlab:mids:alice", "rtlab:midorder:alice", "rtlab:midsizes"):
        store.expire(key, 60)

    async def scenario() -> None:
        server = await started(redis_server.url)
        adapter(server).mid_limits = (2, 10**6, 10, 10**6, 100)
        alice = await EventClient.connect(server.url, "alice")
        for n in range(2):
            await alice.emit("heartbeat", ack=True, mid=f"h{n}")
        await alice.emit("join-room", "hall", ack=True)  # after what was queued before it
        kept = store.hgetall("rtlab:mids:alice")
        assert sorted(kept) == ["/ h0", "/ h1"]  # the old one went first
        assert store.lrange("rtlab:midorder:alice", 0, -1) == [
            f"{len(kept['/ h0'])} / h0",
            f"{len(kept['/ h1'])} / h1",
        ]
        size = sum(len(k) + len(v) for k, v in kept.items())
        assert store.hgetall("rtlab:midsizes") == {"alice": str(size), "*": str(size)}
        await alice.close()
        await server.stop()

    run(scenario())


def test_history_stays_within_its_bytes_the_least_recent_rooms_losing_their_oldest(
    redis_server, monkeypatch
):
    """Rooms are ordered by their last use to the second (a process moves a room it
    used within the second no further): here every message moves its room, as
    messages a second apart would, so that this test need not take a minute."""
    monkeypatch.setattr(RedisAdapter, "_touch", lambda self, ns, room: True)
    store = redis_server.client()
    budget = 3000  # bytes of history entries in the namespace

    def history_bytes() -> dict[str, int]:
        return {
            key.rsplit(":", 1)[1]: sum(len(e.encode()) for e in store.lrange(key, 0, -1))
            for key in store.scan_iter("rtlab:history:/:*")
        }

    async def scenario() -> None:
        server = await started(redis_server.url, history_bytes=budget)
        alice = await EventClient.connect(server.url, "alice")
        for room in ("old", "new"):
            await alice.emit("join-room", room, ack=True)
        for n in range(30):
            for room in ("old", "new"):  # new is always the more recently used
                data = {"roomId": room, "message": f"{room} {n} " + "x" * 40}
                await alice.emit("send-message", data, ack=True)
            kept = history_bytes()
            assert sum(kept.values()) <= budget
            assert int(store.hget("rtlab:sizes:/", "*")) == sum(kept.values())
        newest = [
            e.rsplit('"message":"', 1)[1][:6] for e in store.lrange("rtlab:history:/:new", 0, -1)
        ]
        assert newest[-1] == "new 29"  # the newest message always kept
        before = history_bytes()
        for n in range(30, 40):  # new alone now: old, the least recently used, pays
            data = {"roomId": "new", "message": f"new {n} " + "x" * 40}
            await alice.emit("send-message", data, ack=True)
        after = history_bytes()
        assert after.get("old", 0) < before["old"] and after["new"] > before["new"]
        assert sum(after.values()) <= budget
        late = await EventClient.connect(server.url, "late")  # what a join replays agrees
        answer = await late.emit("join-room", {"roomId": "new", "since": 0}, ack=True)
        assert answer["recovered"] is False and answer["seq"] == 40
        for client in (alice, late):
            await client.close()
        await server.stop()

    run(scenario())


def test_a_room_message_takes_the_bounds_as_they_are_now(redis_server):
    """A process packs what every script into a room repeats once (_send_head), but the
    bounds are read at each message: changed between two, the second keeps the new."""
    store = redis_server.client()

    async def scenario() -> None:
        server = await started(redis_server.url)
        alice = await EventClient.connect(server.url, "alice")
        await alice.emit("join-room", "hall", ack=True)
        for n in range(4):
            await alice.emit("send-message", {"roomId": "hall", "message": f"m{n}"}, ack=True)
        assert store.llen("rtlab:history:/:hall") == 4
        adapter(server).history_size = 2
        answer = await alice.emit("send-message", {"roomId": "hall", "message": "m4"}, ack=True)
        assert answer["seq"] == 5
        kept = store.lrange("rtlab:history:/:hall", 0, -1)
        assert [entry.split(" ", 1)[0] for entry in kept] == ["4", "5"]
        adapter(server).mid_limits = (4, 600, 2, 10**6, 10)  # every ack too big to keep
        data = {"roomId": "hall", "message": "m5"}
        await alice.emit("send-message", data, ack=True, mid="a")
        assert store.hget("rtlab:mids:alice", "/ a") == '{"duplicate":true}'
        await alice.close()
        await server.stop()

    run(scenario())


def test_with_the_default_bounds_every_key_expires_within_its_families_ttl(redis_server):
    store = redis_server.client()
    longest = {"seq": SEQ_TTL, "rooms": SEQ_TTL, "alive": 5}
    longest.update(dict.fromkeys(("mids", "midorder", "midusers"), MID_TTL))

    async def scenario() -> None:
        server = await LabServer(redis=redis_server.url).start()
        alice = await EventClient.connect(server.url, "alice")
        bob = await EventClient.connect(server.url, "bob")
        for client in (alice, bob):
            await client.emit("join-room", "lobby", ack=True)
        await alice.emit("send-message", {"roomId": "lobby", "message": "hi"}, ack=True, mid="1")
        await bob.emit("leave-room", "lobby", ack=True)
        await alice.wait_for("user-left", 1, timeout=GUARD)  # the leave is in Redis
        found = keys(store)
        assert {family(k) for k in found} >= {"seq", "rooms", "history", "seen", "mids", "proc"}
        for key in found:
            assert 0 < store.ttl(key) <= longest.get(family(key), KEY_TTL), key
        for client in (alice, bob):
            await client.close()
        await server.stop()

    run(scenario())


def test_a_process_remembers_rooms_only_while_they_have_members_there(redis_server, monkeypatch):
    """Every process reads every room's messages off the channel: the newest seq it keeps
    per room (what tells a live message from one its catch-up delivered) is for rooms
    with members there only, and the rooms it touched lately, like the scripts it packed
    for rooms, are capped (TOUCHED)."""
    monkeypatch.setattr(redis_adapter, "TOUCHED", 4)

    async def scenario() -> None:
        a = await started(redis_server.url, rate_limit=TokenBucket(100, 100))
        b = await started(redis_server.url)
        alice = await EventClient.connect(a.url, "alice")
        bob = await EventClient.connect(b.url, "bob")
        await bob.emit("join-room", "r0", ack=True)
        for n in range(10):
            await alice.emit("join-room", f"r{n}", ack=True)
            answer = await alice.emit(
                "send-message", {"roomId": f"r{n}", "message": "hi"}, ack=True
            )
            assert answer["seq"] == 1
            assert len(adapter(a)._touched) <= 4 and len(adapter(a)._heads) <= 4
        await bob.wait_for("receive-message", 1, timeout=GUARD)
        assert set(adapter(a)._last_seq) == {("/", f"r{n}") for n in range(10)}
        assert set(adapter(b)._last_seq) == {("/", "r0")}  # nine rooms without bob: none
        await bob.emit("leave-room", "r0", ack=True)
        await alice.emit("send-message", {"roomId": "r0", "message": "gone"}, ack=True)
        # bob's join comes back to b through the channel, after that message.
        await bob.emit("join-room", "quiet", ack=True)
        assert adapter(b)._last_seq == {}  # r0 emptied there: dropped on its next message
        for client in (alice, bob):
            await client.close()
        for server in (a, b):
            await server.stop()

    run(scenario())
