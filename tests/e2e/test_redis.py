"""Rooms across server processes through a real redis-server (rtlab serve --redis).

Every test starts its own redis-server on a free loopback port (nothing saved to disk)
and real ``rtlab serve`` processes or lab servers; clients are real EventClients.
No timed assertions: waits only have generous hang guards.
"""

from __future__ import annotations

import asyncio
import collections
import re
import signal
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest

import rtlab
from rtlab.aio import redis_adapter
from rtlab.aio.client import AckError, EventClient
from rtlab.aio.events import LocalManager
from rtlab.aio.server import LabServer
from rtlab.core.backoff import Reconnection
from rtlab.core.envelope import ErrorCode
from tests.cli.test_cli import RTLAB, start, wait_for_line
from tests.e2e.redis_server import RedisServer, free_port

GUARD = 30.0  # seconds: a hang guard, never a speed requirement
FAST = Reconnection(delay=0.1, delay_max=0.5, randomization_factor=0.2)


@pytest.fixture
def serve_redis(redis_server: RedisServer) -> Iterator:
    """Start ``rtlab serve --redis URL`` processes; each call gives one's ws:// URL."""
    processes: list[subprocess.Popen[str]] = []

    def serve() -> tuple[str, subprocess.Popen[str]]:
        process = start("serve", "--port", "0", "--rate-limit", "off", "--redis", redis_server.url)
        processes.append(process)
        url = wait_for_line(process, r"echo\s+(ws://127\.0\.0\.1:\d+)/echo").group(1)
        wait_for_line(process, re.escape(f"Rooms span every server on Redis {redis_server.url}"))
        return url, process

    yield serve
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def run(coro, timeout: float = 120):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(predicate, what: str, guard: float = GUARD) -> None:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` (sync or async) until true; fail after the hang guard."""
    deadline = time.monotonic() + guard
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {guard} s: {what}")
        await asyncio.sleep(0.05)


def messages(client: EventClient, room: str = "lobby") -> list[dict]:
    return [e.data for e in client.events("receive-message") if e.data["roomId"] == room]


async def two_in_lobby(url: str) -> tuple[LabServer, LabServer, EventClient, EventClient]:
    """Two lab servers on the Redis at ``url``; alice on the first, bob on the second,
    both in the room "lobby"."""
    one = await LabServer(redis=url).start()
    two = await LabServer(redis=url).start()
    alice = await EventClient.connect(one.url, "alice")
    bob = await EventClient.connect(two.url, "bob")
    for client in (alice, bob):
        await client.emit("join-room", "lobby", ack=True)
    return one, two, alice, bob


def cut_subscription(redis_server: RedisServer, server: LabServer) -> None:
    """Kill ``server``'s subscribed connection to Redis (the adapter names it), only."""
    admin = redis_server.client()
    name = f"rtlab-sub-{server.events.manager.uid}"
    (subscriber,) = [c for c in admin.client_list() if c["name"] == name]
    assert admin.client_kill_filter(_id=subscriber["id"]) == 1
    admin.close()


async def close_all(servers: list[LabServer], clients: list[EventClient]) -> None:
    for client in clients:
        await client.close()
    for server in servers:
        await server.stop()


def test_three_processes_one_room_every_member_gets_everything_once(serve_redis):
    urls = [serve_redis()[0] for _ in range(3)]
    users = [f"u{i}" for i in range(6)]  # two on each process
    per_sender = 8

    async def scenario() -> None:
        clients = [await EventClient.connect(urls[i % 3], u) for i, u in enumerate(users)]
        acks = [await c.emit("join-room", "lobby", ack=True) for c in clients]
        assert acks[-1]["members"] == sorted(users)  # members from every process
        assert [a["members"] for a in acks] == [sorted(users[: i + 1]) for i in range(6)]

        async def talk(client: EventClient) -> list[int]:
            seqs = []
            for n in range(per_sender):
                text = f"{client.user} #{n}"
                answer = await client.emit(
                    "send-message", {"roomId": "lobby", "message": text}, ack=True
                )
                seqs.append(answer["seq"])
            return seqs

        sent = await asyncio.gather(*(talk(c) for c in clients))
        total = per_sender * len(users)
        for client in clients:
            await client.wait_for("receive-message", total, timeout=GUARD)
        await asyncio.sleep(0.2)  # anything extra (a duplicate) would show up now
        reference = {(m["userId"], m["message"]): m["seq"] for m in messages(clients[0])}
        assert sorted(reference.values()) == list(range(1, total + 1))
        for client, seqs in zip(clients, sent, strict=True):
            got = messages(client)
            assert len(got) == total, f"{client.user} got {len(got)} of {total}"
            # exactly once, the same seq everywhere, and the sender's ack agrees
            assert {(m["userId"], m["message"]): m["seq"] for m in got} == reference
            assert [m["seq"] for m in got] == sorted(m["seq"] for m in got)  # in seq order
            mine = [reference[(client.user, f"{client.user} #{n}")] for n in range(per_sender)]
            assert seqs == mine
            for user in users:  # in order per sender
                texts = [m["message"] for m in got if m["userId"] == user]
                assert texts == [f"{user} #{n}" for n in range(per_sender)]
            # user-joined once per later user, whichever process they joined
            joined = [e.data["userId"] for e in client.events("user-joined")]
            assert joined == users[users.index(client.user) + 1 :]
        # a broadcast crosses processes too
        await clients[0].emit("broadcast", "all hands", ack=True)
        for client in clients:
            got = await client.wait_for("broadcast-message", 1, timeout=GUARD)
            assert [b["message"] for b in got] == ["all hands"]
        for client in clients:
            await client.close()

    run(scenario())


def test_a_resend_to_another_process_is_acknowledged_not_delivered(serve_redis):
    (a, _), (b, _) = serve_redis(), serve_redis()

    async def scenario() -> None:
        bob = await EventClient.connect(b, "bob")
        await bob.emit("join-room", "lobby", ack=True)
        first = await EventClient.connect(a, "alice")
        await first.emit("join-room", "lobby", ack=True)
        data = {"roomId": "lobby", "message": "only once"}
        answer = await first.emit("send-message", data, ack=True, mid="alice-1")
        await first.close()
        again = await EventClient.connect(b, "alice")  # came back on the other process
        await again.emit("join-room", "lobby", ack=True)
        resent = await again.emit("send-message", data, ack=True, mid="alice-1")
        assert resent == answer == {"roomId": "lobby", "seq": 1, "delivered": 2}
        after = await again.emit("send-message", {"roomId": "lobby", "message": "next"}, ack=True)
        assert after["seq"] == 2
        await bob.wait_for("receive-message", 2, timeout=GUARD)
        assert [m["message"] for m in messages(bob)] == ["only once", "next"]
        await bob.close()
        await again.close()

    run(scenario())


def test_a_room_message_with_a_mid_costs_one_redis_round_trip(redis_server):
    """Its one script numbers, keeps, checks and notes the mid, and publishes it."""

    async def scenario() -> list[object]:
        server = await LabServer(redis=redis_server.url).start()
        alice = await EventClient.connect(server.url, "alice")
        try:
            await alice.emit("join-room", "lobby", ack=True)
            adapter = server.events.manager
            operations: list[object] = []  # every command sent from here on
            pipe = adapter._redis
            call = pipe.call_deferred  # where every command goes
            pipe.call_deferred = lambda command: operations.append(command) or call(command)
            data = {"roomId": "lobby", "message": "once"}
            await alice.emit("send-message", data, ack=True, mid="m1")
            await alice.emit("send-message", data, ack=True, mid="m1")  # known here: none
            return list(operations)  # before closing, which counts alice out
        finally:
            await alice.close()
            await server.stop()

    assert len(run(scenario())) == 1


def test_a_publication_that_never_comes_back_is_waited_for_a_bounded_time(
    redis_server, monkeypatch
):
    """The ack of a room message waits for the message's own copy from the channel (the
    message before the ack); if that copy is lost, the heartbeat stops the wait."""
    monkeypatch.setattr(redis_adapter, "ANSWER_TIMEOUT", 0.3)

    async def scenario() -> None:
        server = await LabServer(redis=redis_server.url).start()
        adapter = server.events.manager
        adapter.heartbeat = 0.1
        deliver = adapter._deliver
        lost: list[str] = []

        def drop_our_messages(text: str) -> None:
            head = text.partition("\n")[0]
            if '"refs"' in head:  # room messages of ours
                lost.append(text)
                return
            deliver(text)

        alice = await EventClient.connect(server.url, "alice")
        try:
            await alice.emit("join-room", "lobby", ack=True)
            adapter._deliver = drop_our_messages
            data = {"roomId": "lobby", "message": "lost on the way back"}
            answer = await alice.emit("send-message", data, ack=True, timeout=GUARD)
            assert answer == {"roomId": "lobby", "seq": 1, "delivered": 1}
            assert len(lost) == 1 and adapter._waiting == {}
        finally:
            await alice.close()
            await server.stop()

    run(scenario())


def test_a_killed_process_clients_move_to_another_and_lose_nothing(serve_redis, redis_server):
    (a, process_a), (b, _) = serve_redis(), serve_redis()

    async def scenario() -> None:
        alice = await EventClient.connect([a, b], "alice", reconnection=FAST)
        bob = await EventClient.connect(b, "bob")
        await alice.emit("join-room", "lobby", ack=True)
        await bob.emit("join-room", "lobby", ack=True)
        for n in range(3):
            await alice.emit("send-message", {"roomId": "lobby", "message": f"a{n}"}, ack=True)
        await bob.wait_for("receive-message", 3, timeout=GUARD)

        process_a.send_signal(signal.SIGKILL)
        await until(lambda: not alice.connected, "alice notices the drop")
        # While alice is away: bob talks, and alice queues messages of her own.
        for n in range(3):
            await bob.emit("send-message", {"roomId": "lobby", "message": f"b{n}"}, ack=True)
        for n in range(3, 6):
            await alice.emit("send-message", {"roomId": "lobby", "message": f"a{n}"})
        await until(lambda: alice.connected and alice.queued == 0, "alice back, queue sent")
        assert alice.url.startswith(b)  # on the process that is still alive
        await alice.wait_for("receive-message", 9, timeout=GUARD)
        await bob.wait_for("receive-message", 9, timeout=GUARD)
        await asyncio.sleep(0.2)  # a duplicate would show up now
        for client in (alice, bob):
            got = messages(client)
            assert sorted(m["seq"] for m in got) == list(range(1, 10)), client.user
            texts = collections.Counter(m["message"] for m in got)
            assert texts == collections.Counter([f"a{n}" for n in range(6)] + ["b0", "b1", "b2"])
            assert [t for t in (m["message"] for m in got) if t[0] == "a"] == [
                f"a{n}" for n in range(6)
            ]
        # The dead process is reaped from Redis: alice counts once, through b.
        store = redis_server.client()
        await until(
            lambda: len(store.smembers("rtlab:procs")) == 1, "the dead process is reaped", 60
        )
        assert store.hgetall("rtlab:members:/:lobby") == {"alice": "1", "bob": "1"}
        store.close()
        await alice.close()
        await bob.close()

    run(scenario())


def test_a_redis_restart_gives_clear_errors_then_normal_service(redis_server):
    async def scenario() -> None:
        one = await LabServer(redis=redis_server.url).start()
        two = await LabServer(redis=redis_server.url).start()
        alice = await EventClient.connect(one.url, "alice", reconnection=FAST)
        bob = await EventClient.connect(two.url, "bob")
        probe = await EventClient.connect(one.url, "carol")  # no reconnection: sees errors
        for client in (alice, bob, probe):
            await client.emit("join-room", "lobby", ack=True)
        await alice.emit("send-message", {"roomId": "lobby", "message": "before"}, ack=True)
        await bob.wait_for("receive-message", 1, timeout=GUARD)

        redis_server.kill()
        await until(lambda: not one.events.manager.available, "server one notices")
        with pytest.raises(AckError) as refused:
            await probe.emit("send-message", {"roomId": "lobby", "message": "x"}, ack=True)
        assert refused.value.code == ErrorCode.UNAVAILABLE
        assert "Redis" in refused.value.message
        # The server keeps serving: events that need no Redis are answered.
        assert "time" in await probe.emit("heartbeat", ack=True)
        # alice's message waits in her queue (unavailable keeps it, like rate_limited).
        await alice.emit("send-message", {"roomId": "lobby", "message": "during"})
        assert any("unreachable" in line for line in one.log)

        redis_server.start()  # the same port, empty: nothing was saved
        await until(lambda: one.events.manager.available, "server one reconnects")
        await until(lambda: two.events.manager.available, "server two reconnects")
        got = await bob.wait_for("receive-message", 2, timeout=GUARD)
        assert [m["message"] for m in got] == ["before", "during"]
        assert got[1]["seq"] > got[0]["seq"]  # numbering never goes back
        answer = await probe.emit("send-message", {"roomId": "lobby", "message": "after"}, ack=True)
        assert answer["seq"] == got[1]["seq"] + 1
        assert answer["delivered"] == 3  # memberships written back to the new Redis
        got = await bob.wait_for("receive-message", 3, timeout=GUARD)
        assert got[2]["message"] == "after"
        assert any("subscribed" in line for line in list(one.log)[-5:])
        for client in (alice, bob, probe):
            await client.close()
        await one.stop()
        await two.stop()

    run(scenario())


def test_scripts_flushed_from_redis_are_loaded_again_and_nothing_is_lost(redis_server):
    """The writer calls its scripts by sha: after SCRIPT FLUSH the next one is NOSCRIPT,
    refused as unavailable (a resend waits in the client's queue) until they are loaded
    again on reconnecting."""

    async def scenario() -> None:
        server = await LabServer(redis=redis_server.url).start()
        alice = await EventClient.connect(server.url, "alice", reconnection=FAST)
        bob = await EventClient.connect(server.url, "bob")
        for client in (alice, bob):
            await client.emit("join-room", "lobby", ack=True)
        redis_server.client().script_flush()
        answer = await alice.emit("send-message", {"roomId": "lobby", "message": "after"}, ack=True)
        assert answer["delivered"] == 2
        got = await bob.wait_for("receive-message", 1, timeout=GUARD)
        assert [m["message"] for m in got] == ["after"]
        assert any("unreachable" in line and "NoScript" in line for line in server.log)
        for client in (alice, bob):
            await client.close()
        await server.stop()

    run(scenario())


def test_messages_published_while_a_process_resubscribes_reach_its_members(redis_server):
    """A channel keeps nothing: what is published while one process is not subscribed
    reaches its members from the room's history when it subscribes again, once."""

    async def scenario() -> None:
        one, two, alice, bob = await two_in_lobby(redis_server.url)
        await alice.emit("send-message", {"roomId": "lobby", "message": "before"}, ack=True)
        await bob.wait_for("receive-message", 1, timeout=GUARD)

        cut_subscription(redis_server, two)  # it backs off before subscribing again
        await until(lambda: not two.events.manager.available, "server two notices")
        await until(lambda: one.events.manager.available, "server one is still subscribed")
        sent = await alice.emit("send-message", {"roomId": "lobby", "message": "gap"}, ack=True)
        await until(lambda: two.events.manager.available, "server two subscribes again")
        got = await bob.wait_for("receive-message", 2, timeout=GUARD)
        assert [m["message"] for m in got] == ["before", "gap"]
        assert got[1]["seq"] == sent["seq"]
        await alice.emit("send-message", {"roomId": "lobby", "message": "after"}, ack=True)
        got = await bob.wait_for("receive-message", 3, timeout=GUARD)
        assert [m["message"] for m in got] == ["before", "gap", "after"]  # nothing twice
        await close_all([one, two], [alice, bob])

    run(scenario())


def test_what_the_channel_brings_during_a_long_catch_up_is_bounded(redis_server):
    """A process catching up after it subscribed again holds what the channel brings
    meanwhile, up to held_limit characters; past that it drops what it held, connects
    again and catches up from the rooms' history: its members get every message once,
    in order. (Here the first catch-up waits until the channel overflowed: a slow Redis.)"""

    async def scenario() -> None:
        one, two, alice, bob = await two_in_lobby(redis_server.url)
        manager = two.events.manager
        manager.held_limit = 2_000
        catch_up = manager._catch_up
        overflowed = asyncio.Event()
        calls = 0

        async def slow_catch_up() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                await overflowed.wait()
            await catch_up()

        manager._catch_up = slow_catch_up
        cut_subscription(redis_server, two)
        await until(lambda: not manager.available, "server two notices")
        await until(lambda: manager._held is not None and calls == 1, "two catches up, slowly")
        texts = [f"m{i} " + "x" * 400 for i in range(10)]
        for text in texts:
            await alice.emit("send-message", {"roomId": "lobby", "message": text}, ack=True)
        gave_up = "the channel brought more than 2,000 characters while this process caught up"
        await until(lambda: any(gave_up in line for line in two.log), "two gives up")
        assert manager._held_size <= manager.held_limit
        overflowed.set()
        await until(lambda: manager.available, "server two subscribes again")
        got = await bob.wait_for("receive-message", 10, timeout=GUARD)
        await alice.emit("send-message", {"roomId": "lobby", "message": "after"}, ack=True)
        got = await bob.wait_for("receive-message", 11, timeout=GUARD)
        assert [m["message"] for m in got] == [*texts, "after"]  # each once, in order
        assert calls >= 2
        await close_all([one, two], [alice, bob])

    run(scenario())


def test_without_redis_nothing_changes_and_the_manager_is_local():
    async def scenario() -> None:
        async with LabServer() as server:
            assert isinstance(server.events.manager, LocalManager)
            alice = await EventClient.connect(server.url, "alice")
            answer = await alice.emit("join-room", "lobby", ack=True)
            assert answer["members"] == ["alice"]
            await alice.close()

    run(scenario())


def test_chat_events_cross_processes_presence_typing_history_and_dms(redis_server):
    async def scenario() -> None:
        one = await LabServer(redis=redis_server.url).start()
        two = await LabServer(redis=redis_server.url).start()
        alice = await EventClient.connect(one.url, "alice")
        bob = await EventClient.connect(two.url, "bob")
        await alice.emit("join-room", "lobby", ack=True)
        answer = await bob.emit("join-room", "lobby", ack=True)
        assert [(p["userId"], p["online"]) for p in answer["presence"]] == [
            ("alice", True),
            ("bob", True),
        ]
        online = await alice.wait_for("presence", 1, timeout=GUARD)
        assert (online[0]["userId"], online[0]["online"]) == ("bob", True)

        sent = await alice.emit("send-message", {"roomId": "lobby", "message": "hi"}, ack=True)
        carol = await EventClient.connect(two.url, "carol")
        answer = await carol.emit("join-room", "lobby", ack=True)
        assert [(m["message"], m["seq"]) for m in answer["history"]] == [("hi", sent["seq"])]

        await bob.emit("typing", {"roomId": "lobby", "typing": True}, ack=True)
        typing = await alice.wait_for("typing", 1, timeout=GUARD)
        assert typing == [{"roomId": "lobby", "userId": "bob", "typing": True}]

        answer = await bob.emit("direct-message", {"to": "alice", "message": "psst"}, ack=True)
        assert answer == {"delivered": 1}
        (dm,) = await alice.wait_for("direct-message", 1, timeout=GUARD)
        assert (dm["from"], dm["to"], dm["message"]) == ("bob", "alice", "psst")
        with pytest.raises(AckError) as refused:
            await bob.emit("direct-message", {"to": "nobody", "message": "?"}, ack=True)
        assert refused.value.code == ErrorCode.UNKNOWN_USER

        await bob.close()
        await alice.wait_for("user-left", 1, timeout=GUARD)
        changes = [(p["userId"], p["online"]) for p in await alice.wait_for("presence", 3)]
        assert changes == [("bob", True), ("carol", True), ("bob", False)]
        dave = await EventClient.connect(one.url, "dave")
        answer = await dave.emit("join-room", "lobby", ack=True)
        bob_entry = [p for p in answer["presence"] if p["userId"] == "bob"]
        assert bob_entry[0]["online"] is False and bob_entry[0]["lastSeen"].endswith("Z")
        await asyncio.sleep(0.2)  # anything doubled would show up now
        assert [e.data["userId"] for e in alice.events("user-left")] == ["bob"]
        assert len(alice.events("direct-message")) == 1
        for client in (alice, carol, dave):
            await client.close()
        await one.stop()
        await two.stop()

    run(scenario())


def test_rtlab_connect_takes_a_list_of_servers_and_moves_on_when_one_stops(redis_server):
    one = rtlab.start_server(redis=redis_server.url)
    two = rtlab.start_server(redis=redis_server.url)
    nobody = f"ws://127.0.0.1:{free_port()}"  # nothing listens there
    try:
        with pytest.raises(ValueError, match="empty"):
            rtlab.connect([], "alice")
        alice = rtlab.connect([nobody, one, two.url], "alice", reconnection=FAST)
        assert alice.inner.url.startswith(one.url)  # the first that answers
        bob = rtlab.connect(two, "bob")
        alice.emit("join-room", "lobby", ack=True)
        bob.emit("join-room", "lobby", ack=True)
        one.stop()
        rtlab.wait_until(
            lambda: alice.connected and alice.inner.url.startswith(two.url),
            timeout=GUARD,
            what="alice on the other server",
        )
        alice.emit("send-message", {"roomId": "lobby", "message": "still here"}, ack=True)
        (got,) = bob.wait_for("receive-message", timeout=GUARD)
        assert (got["userId"], got["message"]) == ("alice", "still here")

        async def carol() -> str:
            client = await rtlab.aconnect((nobody, two), "carol")
            try:
                return client.url
            finally:
                await client.close()

        assert run(carol()).startswith(two.url)
        alice.close()
        bob.close()
    finally:
        one.stop()
        two.stop()


@pytest.mark.parametrize("how", ["leave-room", "disconnect"])
def test_typing_ends_at_once_when_the_typist_leaves_the_room_or_disconnects(redis_server, how):
    """As without Redis: the others hear typing=false when the typist goes, not at expiry."""

    async def scenario() -> None:
        one = await LabServer(redis=redis_server.url).start()
        two = await LabServer(redis=redis_server.url).start()
        for server in (one, two):
            server.app.typing_expiry = 3600.0  # so only the leaving can end it here
        alice = await EventClient.connect(one.url, "alice")
        bob = await EventClient.connect(two.url, "bob")  # on the other process
        carol = await EventClient.connect(one.url, "carol")  # on alice's
        for client in (alice, bob, carol):
            await client.emit("join-room", "lobby", ack=True)
        await alice.emit("typing", {"roomId": "lobby", "typing": True}, ack=True)
        for client in (bob, carol):
            (typing,) = await client.wait_for("typing", 1, timeout=GUARD)
            assert typing == {"roomId": "lobby", "userId": "alice", "typing": True}
        if how == "leave-room":
            await alice.emit("leave-room", "lobby", ack=True)
        else:
            await alice.close()
        for client in (bob, carol):
            typing = await client.wait_for("typing", 2, timeout=GUARD)
            assert typing[1] == {"roomId": "lobby", "userId": "alice", "typing": False}
            await client.wait_for("user-left", 1, timeout=GUARD)
        await asyncio.sleep(0.2)  # a doubled typing=false would show up now
        for client in (bob, carol):
            assert len(client.events("typing")) == 2
        for client in (alice, bob, carol):
            await client.close()
        await one.stop()
        await two.stop()

    run(scenario())


def test_a_departure_across_processes_is_told_as_in_one_process(redis_server):
    """user-left, presence offline, then typing false (as test_local_rooms.py has it in one
    process): every process tells the marker's two, the typist's own ends their typing
    after, through the channel."""

    async def scenario() -> None:
        one, two, alice, bob = await two_in_lobby(redis_server.url)
        await alice.emit("typing", {"roomId": "lobby", "typing": True}, ack=True)
        await bob.wait_for("typing", 1, timeout=GUARD)
        await alice.emit("leave-room", "lobby", ack=True)
        await bob.wait_for("typing", 2, timeout=GUARD)
        said = [e.event for e in bob.events() if e.event in ("typing", "presence", "user-left")]
        assert said == ["typing", "user-left", "presence", "typing"]
        await close_all([one, two], [alice, bob])

    run(scenario())


def test_typing_ends_when_the_typists_process_dies(serve_redis):
    """The dead process kept alice's typing and its expiry timer: the reaping ends it."""
    (a, process_a), (b, _) = serve_redis(), serve_redis()

    async def scenario() -> None:
        alice = await EventClient.connect(a, "alice")
        bob = await EventClient.connect(b, "bob")
        for client in (alice, bob):
            await client.emit("join-room", "lobby", ack=True)
        await alice.emit("typing", {"roomId": "lobby", "typing": True}, ack=True)
        await bob.wait_for("typing", 1, timeout=GUARD)
        process_a.send_signal(signal.SIGKILL)
        typing = await bob.wait_for("typing", 2, timeout=2 * GUARD)  # after the reaping
        assert typing == [
            {"roomId": "lobby", "userId": "alice", "typing": True},
            {"roomId": "lobby", "userId": "alice", "typing": False},
        ]
        (left,) = await bob.wait_for("user-left", 1, timeout=GUARD)
        assert left == {"userId": "alice", "roomId": "lobby"}
        (offline,) = await bob.wait_for("presence", 1, timeout=GUARD)  # alice was there first
        assert (offline["userId"], offline["online"]) == ("alice", False)
        said = [e.event for e in bob.events() if e.event in ("typing", "presence", "user-left")]
        assert said[-3:] == ["user-left", "presence", "typing"]  # as when a user leaves
        await bob.close()
        await alice.close()

    run(scenario())


def test_a_process_taken_for_dead_writes_its_sessions_back(redis_server):
    async def scenario() -> None:
        server = await LabServer(redis=redis_server.url).start()
        alice = await EventClient.connect(server.url, "alice")
        await alice.emit("join-room", "lobby", ack=True)
        store = redis_server.client()
        uid = server.events.manager.uid
        assert store.hgetall("rtlab:members:/:lobby") == {"alice": "1"}
        # What another process's heartbeat does to a process that stalled too long:
        store.delete(f"rtlab:proc:{uid}")
        store.delete("rtlab:members:/:lobby", "rtlab:members:/:*")
        await until(
            lambda: store.hgetall("rtlab:members:/:lobby") == {"alice": "1"}, "written back"
        )
        assert store.hgetall("rtlab:members:/:*") == {"alice": "1"}
        assert store.hgetall(f"rtlab:proc:{uid}") == {"/ lobby alice": "1", "/ * alice": "1"}
        store.close()
        await alice.close()
        await server.stop()

    run(scenario())


def test_serve_refuses_a_bad_redis_url():
    result = subprocess.run(
        [*RTLAB, "serve", "--port", "0", "--redis", "localhost:6379"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--redis must look like redis://HOST:PORT/DB, got 'localhost:6379'" in result.stderr


def test_serve_without_a_reachable_redis_still_serves_with_clear_errors():
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    process = start("serve", "--port", "0", "--redis", url)
    try:
        base = wait_for_line(process, r"echo\s+(ws://127\.0\.0\.1:\d+)/echo").group(1)
        wait_for_line(process, re.escape(f"on Redis {url}. (unreachable for now: retrying)"))

        async def scenario() -> None:
            alice = await EventClient.connect(base, "alice")
            with pytest.raises(AckError) as refused:
                await alice.emit("join-room", "lobby", ack=True)
            assert refused.value.code == ErrorCode.UNAVAILABLE
            assert "time" in await alice.emit("heartbeat", ack=True)
            await alice.close()

        run(scenario())
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def test_workers_share_one_port_and_one_room(redis_server):
    process = start(
        "serve", "--port", "0", "--rate-limit", "off", "--workers", "2", "--redis", redis_server.url
    )
    store = redis_server.client()
    try:
        port = wait_for_line(process, r"2 worker processes on port (\d+)").group(1)
        base = wait_for_line(process, r"echo\s+(ws://127\.0\.0\.1:\d+)/echo").group(1)
        assert base.endswith(f":{port}")

        async def scenario() -> None:
            await until(lambda: store.scard("rtlab:procs") == 2, "both workers registered", 60)
            users = [f"w{i}" for i in range(8)]
            clients = [await EventClient.connect(base, u) for u in users]
            for client in clients:
                await client.emit("join-room", "lobby", ack=True)
            for client in clients:
                await client.emit("send-message", {"roomId": "lobby", "message": client.user})
            for client in clients:
                got = await client.wait_for("receive-message", len(users), timeout=GUARD)
                assert sorted(m["message"] for m in got) == users
                assert [m["seq"] for m in got] == list(range(1, len(users) + 1))
            await asyncio.sleep(0.2)  # a duplicate would show up now
            assert all(len(messages(c)) == len(users) for c in clients)
            for client in clients:
                await client.close()

        run(scenario())
        # A worker that dies is started again (the others serve meanwhile).
        first, second = psutil.Process(process.pid).children()
        second.kill()
        wait_for_line(process, r"worker 2 exited with -9; started again")
        assert len(psutil.Process(process.pid).children()) == 2
    finally:
        process.terminate()
        code = process.wait(timeout=60)
        store.close()
    rest = process.stdout.read()
    assert code == 0, rest  # what the supervisor and the first worker said, if not 0
    assert not first.is_running()
    assert "stopped 2 workers" in rest
    assert "Traceback" not in rest
