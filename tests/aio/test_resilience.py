"""Resilience, end to end: recovery, reconnection, dead links, the offline queue, restarts.

Real servers, real sockets, a real fault-injecting proxy (``rtlab.start_proxy``)
between a client and the server; no mocks. The clients run on the test's own loop
(``asyncio.run``); servers and proxies on background loops. Calls that wait for
the clients (``server.stop()``) go through ``asyncio.to_thread`` so that the
clients keep running meanwhile; so do the quick ones (``proxy.cut()``), which
would otherwise run the test's own loop re-entrantly.

A link is made to look dead with ``proxy.freeze()`` (bytes stop, sockets stay
open), and made to drop with ``proxy.cut()``. Freezing and then cutting keeps a
client offline for as long as the test wants: its reconnection attempts reach the
proxy, but their handshakes wait until ``proxy.thaw()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

import rtlab
from rtlab.aio.client import AckError, EventClient, OfflineQueueFull
from rtlab.core.backoff import Reconnection
from rtlab.notebook.background import RunningServer

T = TypeVar("T")
FAST = Reconnection(delay=0.05, delay_max=0.2)  # Socket.IO's shape, quicker


def run(coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
    """Run a test's async body on a fresh loop, never longer than ``timeout``."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def off_loop(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a blocking function (a proxy's, a server's) in a thread: the clients go on."""
    return await asyncio.to_thread(function, *args, **kwargs)


async def on_server(server: RunningServer, function: Callable[..., T], *args: Any) -> T:
    """Call ``function`` on the server's loop thread, from async test code."""
    return await off_loop(server._background.call, function, *args)


async def eventually(condition: Callable[[], object], what: str, timeout: float = 10) -> None:
    """Until a blocking ``condition()`` holds, called in a thread; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await off_loop(condition):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def joined(url: str, user: str, *rooms: str, **options: Any) -> EventClient:
    """A client with FAST reconnection (unless told otherwise), in ``rooms`` of ``/``."""
    options.setdefault("reconnection", FAST)
    client = await EventClient.connect(url, user, **options)
    for room in rooms:
        await client.emit("join-room", room, ack=True)
    return client


async def say(client: EventClient, text: str, room: str = "lobby", ns: str = "/") -> Any:
    return await client.emit(
        "send-message", {"roomId": room, "message": text}, ns=ns, ack=True, timeout=10
    )


def said(client: EventClient, ns: str = "/") -> list[str]:
    return [e.data["message"] for e in client.events("receive-message", ns)]


def local_events(client: EventClient) -> list[str]:
    names = {"disconnect", "reconnect_attempt", "reconnect_error", "reconnect", "reconnect_failed"}
    return [e.event for e in client.events() if e.event in names]


async def usable(client: EventClient) -> None:
    """An acknowledged round trip: everything the server wrote before it has arrived."""
    assert set(await client.emit("heartbeat", ack=True, timeout=10)) == {"time"}


async def offline(proxy: Any, client: EventClient) -> None:
    """Take ``client`` offline until ``proxy.thaw()``: freeze, cut, wait for the drop."""
    before = len(client.events("disconnect"))
    await off_loop(proxy.freeze)
    await off_loop(proxy.cut)
    await client.wait_for("disconnect", before + 1)
    assert not client.connected


@pytest.fixture
def proxy(server):
    with rtlab.start_proxy(server) as running:
        yield running


# -- recovery: join-room with since -------------------------------------------------------


def test_join_room_since_replays_what_was_missed_in_order_before_the_ack(server):
    async def main() -> None:
        bob = await joined(server.url, "bob", "lobby", reconnection=False)
        for i in range(1, 5):
            assert await say(bob, f"m{i}") == {"roomId": "lobby", "seq": i, "delivered": 1}
        alice = await EventClient.connect(server.url, "alice")
        answer = await alice.emit("join-room", {"roomId": "lobby", "since": 2}, ack=True)
        assert [m["seq"] for m in answer.pop("history")] == [1, 2, 3, 4]  # lesson 09's
        del answer["presence"]  # lesson 09's too (tests/aio/test_chat.py)
        assert answer == {
            "roomId": "lobby",
            "members": ["alice", "bob"],
            "seq": 4,
            "recovered": True,
            "replayed": 2,
        }
        # The replay came before the ack (it is here already), in order.
        replayed = [e.data for e in alice.events("receive-message")]
        assert [(m["message"], m["seq"]) for m in replayed] == [("m3", 3), ("m4", 4)]
        await say(bob, "m5")
        # Asking again for everything: the client sees each seq once, whatever comes twice.
        answer = await alice.emit("join-room", {"roomId": "lobby", "since": 0}, ack=True)
        assert (answer["seq"], answer["recovered"], answer["replayed"]) == (5, True, 5)
        await usable(alice)
        assert said(alice) == ["m3", "m4", "m5"]
        assert [e.data["seq"] for e in alice.events("receive-message")] == [3, 4, 5]
        # since 5: up to date; without since the ack has no recovery fields.
        answer = await alice.emit("join-room", {"roomId": "lobby", "since": 5}, ack=True)
        assert (answer["recovered"], answer["replayed"]) == (True, 0)
        answer = await alice.emit("join-room", {"roomId": "lobby"}, ack=True)
        del answer["history"], answer["presence"]
        assert answer == {"roomId": "lobby", "members": ["alice", "bob"], "seq": 5}
        await alice.close()
        await bob.close()

    run(main())


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"roomId": "lobby", "since": -1}, "since must be a whole number, got -1"),
        ({"roomId": "lobby", "since": "3"}, "since must be a whole number, got '3'"),
        ({"roomId": "lobby", "since": 1.5}, "since must be a whole number, got 1.5"),
        ({"roomId": "lobby", "since": True}, "since must be a whole number, got True"),
        ({"since": 0}, "roomId must be a room id"),
        ({"roomId": "no spaces", "since": 0}, "roomId must be a room id"),
    ],
)
def test_join_room_refuses_a_bad_since_or_room(server, data, words):
    async def main() -> None:
        alice = await EventClient.connect(server.url, "alice")
        with pytest.raises(AckError) as caught:
            await alice.emit("join-room", data, ack=True)
        assert caught.value.code == "invalid"
        assert words in caught.value.message
        await alice.close()

    run(main())


def test_heartbeat_is_acknowledged_with_the_server_time(server):
    async def main() -> None:
        alice = await EventClient.connect(server.url, "alice")
        answer = await alice.emit("heartbeat", {"anything": 1}, ack=True)
        assert set(answer) == {"time"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", answer["time"])
        assert set(await alice.emit("heartbeat", ns="/chat", ack=True)) == {"time"}
        await alice.close()

    run(main())


def test_a_client_away_longer_than_the_history_is_told_its_recovery_is_incomplete():
    with (
        rtlab.start_server(history_size=2) as server,
        rtlab.start_proxy(server) as proxy,
    ):

        async def main() -> None:
            alice = await joined(proxy.url, "alice", "lobby")
            bob = await joined(server.url, "bob", "lobby")
            await say(bob, "m1")
            await alice.wait_for("receive-message")
            await offline(proxy, alice)
            for i in range(2, 6):
                await say(bob, f"m{i}")  # m2 and m3 fall out of a history of 2
            await off_loop(proxy.thaw)
            await alice.wait_for("reconnect")
            await usable(alice)
            assert said(alice) == ["m1", "m4", "m5"]  # what was kept, in order, once
            assert alice.errors == ["/ lobby: messages older than the server keeps are lost"]
            await alice.close()
            await bob.close()

        run(main())

    with rtlab.start_server(history_window=0.3) as server:

        async def by_time() -> None:
            bob = await joined(server.url, "bob", "lobby")
            for i in range(1, 4):
                await say(bob, f"m{i}")
            await asyncio.sleep(0.4)
            alice = await EventClient.connect(server.url, "alice")
            answer = await alice.emit("join-room", {"roomId": "lobby", "since": 1}, ack=True)
            assert (answer["recovered"], answer["replayed"], answer["seq"]) == (False, 0, 3)
            await say(bob, "m4")
            answer = await alice.emit("join-room", {"roomId": "lobby", "since": 3}, ack=True)
            assert (answer["recovered"], answer["replayed"]) == (True, 1)
            await alice.close()
            await bob.close()

        run(by_time())


# -- reconnection through the proxy ---------------------------------------------------------


def test_a_cut_link_reconnects_rejoins_and_gets_what_it_missed_once(server, proxy):
    async def main() -> None:
        alice = await joined(proxy.url, "alice", "lobby")
        await alice.emit("join-room", "den", ns="/chat", ack=True)  # connects /chat first
        bob = await joined(server.url, "bob", "lobby")
        await bob.emit("join-room", "den", ns="/chat", ack=True)
        await say(bob, "m1")
        await say(bob, "c1", "den", "/chat")
        await alice.wait_for("receive-message", ns="/chat")

        # Frozen, then cut: what bob says meanwhile is stuck in the proxy, then lost.
        await offline(proxy, alice)
        await say(bob, "m2")
        await say(bob, "c2", "den", "/chat")
        await say(bob, "m3")
        await off_loop(proxy.thaw)
        await alice.wait_for("reconnect")
        assert alice.connected and alice.reconnects == 1
        await alice.wait_for("receive-message", 3)
        await alice.wait_for("receive-message", 2, ns="/chat")
        # In both namespaces again, by itself: new messages arrive live.
        await say(bob, "m4")
        await say(bob, "c3", "den", "/chat")
        await alice.wait_for("receive-message", 4)
        await alice.wait_for("receive-message", 3, ns="/chat")

        # A plain cut, and a message sent at once: whichever way it comes, it comes once.
        assert await off_loop(proxy.cut) == 1
        await say(bob, "m5")
        await alice.wait_for("reconnect", 2)
        await alice.wait_for("receive-message", 5)
        await usable(alice)

        assert said(alice) == ["m1", "m2", "m3", "m4", "m5"]
        assert [e.data["seq"] for e in alice.events("receive-message", "/")] == [1, 2, 3, 4, 5]
        assert said(alice, "/chat") == ["c1", "c2", "c3"]
        events = local_events(alice)
        assert events[:3] == ["disconnect", "reconnect_attempt", "reconnect"]
        assert events.count("disconnect") == events.count("reconnect") == 2
        assert alice.reconnects == 2
        assert alice.errors == []
        assert alice.events("error") == []
        chat = server.server.namespace("/chat")

        def members() -> list[str]:
            return server._background.call(
                lambda: sorted(s.user for s in chat.rooms.members("den"))
            )

        # One session each: the old ones are gone.
        await eventually(lambda: members() == ["alice", "bob"], "alice's old sessions to go")
        await alice.close()
        await bob.close()

    run(main())


def test_handlers_see_the_local_events_with_their_data(server, proxy):
    seen: list[tuple[str, Any]] = []

    async def main() -> None:
        alice = await joined(proxy.url, "alice", "lobby")
        for name in ("disconnect", "reconnect_attempt", "reconnect"):
            alice.on(name, lambda data, name=name: seen.append((name, data)))
        await off_loop(proxy.cut)
        await alice.wait_for("reconnect")
        await alice.close()

    run(main())
    (name, data), (name2, attempt), (name3, done) = seen
    assert (name, name2, name3) == ("disconnect", "reconnect_attempt", "reconnect")
    assert set(data) == {"code"}
    assert attempt["attempt"] == 1
    assert 0.025 <= attempt["delay"] <= 0.075  # 0.05 s, jittered by up to half
    assert done == {"attempt": 1}


def test_a_refused_join_does_not_spoil_later_reconnections(server, proxy):
    async def main() -> None:
        alice = await joined(proxy.url, "alice", "lobby")
        with pytest.raises(AckError):
            await alice.emit("join-room", "no spaces allowed", ack=True)
        await off_loop(proxy.cut)
        await alice.wait_for("reconnect", timeout=5)
        assert "reconnect_error" not in local_events(alice)
        bob = await joined(server.url, "bob", "lobby")
        await say(bob, "still here")
        assert [m["message"] for m in await alice.wait_for("receive-message")] == ["still here"]
        await alice.close()
        await bob.close()

    run(main())


def test_a_server_restarted_without_its_history_numbers_from_1_and_the_client_follows():
    server = rtlab.start_server()
    port = server.port

    async def main() -> None:
        nonlocal server
        alice = await joined(server.url, "alice", "lobby")
        bob = await joined(server.url, "bob", "lobby")
        for i in range(1, 4):
            await say(bob, f"m{i}")
        await alice.wait_for("receive-message", 3)
        await asyncio.to_thread(server.stop)
        server = await asyncio.to_thread(rtlab.start_server, port=port)  # no data_dir
        await alice.wait_for("reconnect", timeout=10)
        await bob.wait_for("reconnect", timeout=10)
        assert await say(bob, "after") == {"roomId": "lobby", "seq": 1, "delivered": 2}
        await alice.wait_for("receive-message", 4)
        assert said(alice) == ["m1", "m2", "m3", "after"]
        assert alice.errors == [
            "/ lobby: the server numbers messages from 1 again (restarted without its history);"
            " some may be lost"
        ]
        await alice.close()
        await bob.close()

    try:
        run(main())
    finally:
        server.stop()


@pytest.mark.slow
def test_a_drop_during_the_rejoin_fails_that_attempt_at_once(server, proxy):
    async def main() -> None:
        alice = await joined(proxy.url, "alice", "lobby")
        await off_loop(proxy.faults, latency=0.5)  # each way
        await off_loop(proxy.cut)
        await alice.wait_for("reconnect_attempt")
        await eventually(lambda: server.clients == [], "the old session to go")
        await eventually(lambda: server.clients != [], "the new handshake")
        # The client has the 101 at +0.5 s and rejoins; the ack would come at +1.5 s.
        await asyncio.sleep(0.9)
        assert local_events(alice) == ["disconnect", "reconnect_attempt"]
        await off_loop(proxy.cut)
        [error] = await alice.wait_for("reconnect_error", timeout=2)  # not after 5 s
        assert error == {"attempt": 1, "error": "alice: connection lost"}
        await off_loop(proxy.faults, latency=0)
        await alice.wait_for("reconnect")
        await usable(alice)
        await alice.close()

    run(main())


def test_a_namespace_joined_as_the_link_drops_does_not_look_connected(server, proxy):
    async def main() -> None:
        alice = await joined(proxy.url, "alice", "lobby")
        await off_loop(proxy.faults, latency=0.3)
        joining = asyncio.ensure_future(
            alice.emit("join-room", "den", ns="/chat", ack=True, timeout=10)
        )
        await asyncio.sleep(0.1)  # its "connect" is on the way
        await offline(proxy, alice)
        await asyncio.sleep(0.3)
        assert not alice.connected  # offline, and still reconnecting
        assert not joining.done()
        await off_loop(proxy.faults, latency=0)
        await off_loop(proxy.thaw)
        assert (await joining)["roomId"] == "den"
        assert alice.connected
        await alice.close()

    run(main())


# -- dead links: heartbeats on both sides ---------------------------------------------------


@pytest.mark.slow
def test_a_frozen_link_is_detected_by_the_client_and_by_the_server():
    ping, timeout, server_close = 0.3, 0.3, 0.5
    client_close = 2  # EventClient.connect's close_timeout
    with (
        rtlab.start_server(
            ping_interval=ping, ping_timeout=timeout, close_timeout=server_close
        ) as server,
        rtlab.start_proxy(server) as proxy,
    ):

        async def main() -> tuple[float, float]:
            alice = await joined(
                proxy.url, "alice", "lobby", ping_interval=ping, ping_timeout=timeout
            )
            await asyncio.sleep(3 * ping)  # a few heartbeats go by: the link is fine
            assert local_events(alice) == []
            assert len(await asyncio.to_thread(lambda: server.clients)) == 1
            await off_loop(proxy.freeze)
            frozen = time.monotonic()

            async def client_gives_up() -> float:
                await alice.wait_for("disconnect", timeout=10)
                return time.monotonic() - frozen

            async def server_gives_up() -> float:
                while await asyncio.to_thread(lambda: server.clients):
                    assert time.monotonic() - frozen < 10, "the server never dropped alice"
                    await asyncio.sleep(0.02)
                return time.monotonic() - frozen

            client_side, server_side = await asyncio.gather(client_gives_up(), server_gives_up())
            await off_loop(proxy.thaw)
            await alice.wait_for("reconnect", timeout=10)
            await usable(alice)
            await alice.close()
            return client_side, server_side

        client_side, server_side = run(main())
    # At most one ping interval until a ping, its timeout, then the closing handshake's.
    assert client_side <= ping + timeout + client_close + 1.0, client_side
    assert server_side <= ping + timeout + server_close + 1.0, server_side
    print(f"\nfrozen link: client gave up after {client_side:.2f} s, server {server_side:.2f} s")


# -- the offline queue --------------------------------------------------------------------


def test_emits_while_offline_are_queued_and_sent_in_order_once(server, proxy):
    async def main() -> None:
        alice = await joined(proxy.url, "alice", "lobby")
        bob = await joined(server.url, "bob", "lobby")
        await offline(proxy, alice)
        assert alice.queued == 0
        for i in range(1, 6):
            assert await alice.emit("send-message", {"roomId": "lobby", "message": f"q{i}"}) is None
        acked = asyncio.ensure_future(say(alice, "q6"))
        await asyncio.sleep(0.05)
        assert alice.queued == 6
        with pytest.raises(TimeoutError):  # an ack timeout: still queued, still delivered
            await alice.emit(
                "send-message", {"roomId": "lobby", "message": "q7"}, ack=True, timeout=0.1
            )
        assert alice.queued == 7
        await asyncio.sleep(0.2)
        assert bob.events("receive-message") == []
        await off_loop(proxy.thaw)
        assert await acked == {"roomId": "lobby", "seq": 6, "delivered": 2}
        await bob.wait_for("receive-message", 7)
        await rtlab.until(lambda: alice.queued == 0, what="the queue to empty")
        await usable(bob)
        await usable(alice)
        expected = [f"q{i}" for i in range(1, 8)]
        assert said(bob) == expected
        assert said(alice) == expected  # her own copies too, once
        await alice.close()
        await bob.close()

    run(main())


def test_a_full_offline_queue_refuses_the_next_event_and_keeps_the_rest(server, proxy):
    async def main() -> None:
        alice = await joined(proxy.url, "alice", "lobby", max_queue=3)
        bob = await joined(server.url, "bob", "lobby")
        await offline(proxy, alice)
        for i in range(1, 4):
            await alice.emit("send-message", {"roomId": "lobby", "message": f"q{i}"})
        with pytest.raises(OfflineQueueFull) as caught:
            await alice.emit("send-message", {"roomId": "lobby", "message": "q4"})
        assert str(caught.value) == (
            "alice: 3 events already wait for the server; 'send-message' was not queued"
        )
        assert alice.queued == 3
        await off_loop(proxy.thaw)
        await bob.wait_for("receive-message", 3)
        await rtlab.until(lambda: alice.queued == 0, what="the queue to empty")
        assert await say(alice, "q5") == {"roomId": "lobby", "seq": 4, "delivered": 2}
        await usable(bob)
        assert said(bob) == ["q1", "q2", "q3", "q5"]
        await alice.close()
        await bob.close()

    run(main())


def test_a_lost_ack_is_resent_on_the_new_connection_and_delivered_once(server, proxy):
    async def main() -> None:
        alice = await joined(proxy.url, "alice", "lobby")
        bob = await joined(server.url, "bob", "lobby")
        await off_loop(
            proxy.faults, latency=0.5
        )  # each way: time to freeze between delivery and ack
        sending = asyncio.ensure_future(say(alice, "once"))
        await bob.wait_for("receive-message")  # the server has handled it...
        await off_loop(
            proxy.freeze,
        )  # ...and its ack (and alice's copy) are still on the way
        await off_loop(proxy.cut)
        await alice.wait_for("disconnect")
        assert not sending.done()
        assert alice.queued == 1
        await off_loop(proxy.faults, latency=0)
        await off_loop(proxy.thaw)
        # Resent with the same mid: acknowledged with the first answer, not delivered again.
        assert await sending == {"roomId": "lobby", "seq": 1, "delivered": 2}
        assert alice.reconnects == 1
        await usable(bob)
        await usable(alice)
        assert said(bob) == ["once"]
        assert said(alice) == ["once"]  # her copy came back with the rejoin's replay
        history = server.server.app.history
        assert await on_server(server, history.last_seq, "/", "lobby") == 1
        await alice.close()
        await bob.close()

    run(main())


# -- giving up, and closing -----------------------------------------------------------------


def test_reconnection_gives_up_after_its_attempts_when_the_server_is_gone():
    server = rtlab.start_server()
    seen: list[Any] = []

    async def main() -> None:
        alice = await joined(
            server.url, "alice", "lobby", reconnection=Reconnection(attempts=2, delay=0.05)
        )
        alice.on("reconnect_failed", seen.append)
        await asyncio.to_thread(server.stop)
        await alice.wait_for("disconnect")
        queued = asyncio.ensure_future(say(alice, "into the void"))
        await alice.wait_for("reconnect_failed", timeout=5)
        assert local_events(alice) == [
            "disconnect",
            "reconnect_attempt",
            "reconnect_error",
            "reconnect_attempt",
            "reconnect_error",
            "reconnect_failed",
        ]
        [disconnect] = [e.data for e in alice.events("disconnect")]
        assert disconnect == {"code": 1001}
        errors = [e.data for e in alice.events("reconnect_error")]
        assert [e["attempt"] for e in errors] == [1, 2]
        assert all("Connect call failed" in e["error"] for e in errors), errors
        assert seen == [{"reconnects": 0}]
        assert alice.closed and not alice.connected
        with pytest.raises(ConnectionError, match="alice: client closed"):
            await queued
        with pytest.raises(ConnectionError, match="alice: connection closed after 0 of 1"):
            await alice.wait_for("receive-message")
        with pytest.raises(ConnectionError, match="alice: the client is closed"):
            await alice.emit("send-message", {"roomId": "lobby", "message": "late"})
        await alice.close()  # closing a closed client is fine

    try:
        run(main())
    finally:
        server.stop()


def test_close_during_the_wait_between_attempts_stops_at_once(server, proxy):
    slow = Reconnection(delay=3, delay_max=3, randomization_factor=0)

    async def main() -> None:
        alice = await joined(proxy.url, "alice", "lobby", reconnection=slow)
        await off_loop(proxy.cut)
        await alice.wait_for("reconnect_attempt")
        started = time.monotonic()
        await alice.close()
        assert time.monotonic() - started < 1
        assert alice.closed
        await asyncio.sleep(0.2)
        assert local_events(alice) == ["disconnect", "reconnect_attempt"]  # not "failed"

    run(main())


def test_close_during_a_hanging_handshake_stops_too(server, proxy):
    async def main() -> None:
        alice = await joined(proxy.url, "alice", "lobby")
        await offline(proxy, alice)  # its next handshake hangs in the frozen proxy
        await alice.wait_for("reconnect_attempt")
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await alice.close()
        assert time.monotonic() - started < 1
        await off_loop(proxy.thaw)
        await asyncio.sleep(0.3)
        assert alice.closed
        assert "reconnect" not in local_events(alice)
        await eventually(lambda: server.clients == [], "no connection left")

    run(main())


# -- the synchronous face ---------------------------------------------------------------------


def test_rtlab_connect_takes_the_reconnection_and_ping_options(server, proxy):
    alice = rtlab.connect(
        proxy, "alice", reconnection=FAST, ping_interval=5, ping_timeout=5, max_queue=2
    )
    with alice, rtlab.connect(server, "bob") as bob:
        assert alice.inner.reconnection == FAST
        assert alice.inner.max_queue == 2
        assert alice.inner.connection.ping_interval == 5
        assert alice.emit("join-room", "lobby", ack=True)["seq"] == 0
        bob.emit("join-room", "lobby", ack=True)
        proxy.freeze()
        proxy.cut()
        alice.wait_for("disconnect")
        alice.emit("send-message", {"roomId": "lobby", "message": "q1"})
        alice.emit("send-message", {"roomId": "lobby", "message": "q2"})
        assert alice.queued == 2
        with pytest.raises(OfflineQueueFull):
            alice.emit("send-message", {"roomId": "lobby", "message": "q3"})
        proxy.thaw()
        alice.wait_for("reconnect")
        assert [m["message"] for m in bob.wait_for("receive-message", 2)] == ["q1", "q2"]
        assert alice.reconnects == 1
        assert alice.errors == []
    assert alice.closed


def test_rtlab_aconnect_takes_them_too(server):
    async def main() -> None:
        alice = await rtlab.aconnect(server, "alice", reconnection=True, max_queue=5)
        assert alice.reconnection == Reconnection()
        assert alice.max_queue == 5
        await alice.close()

    run(main())


# -- the proof under faults -------------------------------------------------------------------

CHAOS_USERS = ("alice", "bob", "carol")
CHAOS_MESSAGES = 1000
CHAOS_BATCH = 20  # events in flight per sender before it waits for their acks
CHAOS_PING = 0.5  # server and clients: a dead link is given up after about a second
CHAOS_SEED = int(os.environ.get("RTLAB_CHAOS_SEED", "20261124"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """``rtlab serve`` in a process of its own: killed, and started again on the same
    port and data dir. Its output goes to a file per start (nothing is printed)."""

    def __init__(self, port: int, data_dir: Path, logs: Path) -> None:
        self.port = port
        self.data_dir = data_dir
        self.logs = logs
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 15) -> None:
        self.starts += 1
        command = [sys.executable, "-m", "rtlab.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--rate-limit", "off"]
        command += ["--ping-interval", str(CHAOS_PING), "--ping-timeout", str(CHAOS_PING)]
        with (self.logs / f"server-{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:  # until it listens
            if self.process.poll() is not None:
                output = (self.logs / f"server-{self.starts}.log").read_text()
                raise RuntimeError(f"rtlab serve exited with {self.process.returncode}: {output}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"rtlab serve did not listen on {self.port} in {timeout} s")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no close frames, no clean-up, whatever it was doing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.mark.slow
def test_proof_under_faults_every_message_once_and_in_order(tmp_path):
    """Three clients, each through its own proxy, send 1,000 messages to one room while
    links are cut and frozen at random and the server is killed (SIGKILL) twice and
    started again on its data dir. In the end every client has every message exactly
    once, each sender's in the order sent, numbered 1 to 1,000 without a gap."""
    started = time.monotonic()
    server = ServerProcess(free_port(), tmp_path / "data", tmp_path)
    server.start()
    proxies = [rtlab.start_proxy(f"ws://127.0.0.1:{server.port}") for _ in CHAOS_USERS]
    rng = random.Random(CHAOS_SEED)
    for proxy in proxies:  # a little latency: acks are on their way for a while
        proxy.faults(latency=rng.uniform(0.01, 0.04))
    shares = [CHAOS_MESSAGES // len(CHAOS_USERS)] * len(CHAOS_USERS)
    shares[0] += CHAOS_MESSAGES - sum(shares)
    sent = {
        user: [f"{user}-{i}" for i in range(n)] for user, n in zip(CHAOS_USERS, shares, strict=True)
    }
    counts = {"cuts": 0, "freezes": 0, "kills": 0, "acked from disk": 0}
    emitted = [0]
    failures: list[str] = []

    async def sender(client: EventClient, texts: list[str], pauses: random.Random) -> None:
        """Emit in order without waiting for each ack: at most CHAOS_BATCH in flight."""
        in_flight = asyncio.Semaphore(CHAOS_BATCH)

        async def send(text: str) -> None:
            try:
                data = {"roomId": "r", "message": text}
                ack = await client.emit("send-message", data, ack=True, timeout=40)
                if "delivered" not in ack:  # a resend, answered from the journal after a kill
                    counts["acked from disk"] += 1
            except Exception as error:  # a refusal, or no ack in time: a failure either way
                failures.append(f"{text}: {error!r}")
            finally:
                in_flight.release()

        sending = []
        for i, text in enumerate(texts, 1):
            await in_flight.acquire()
            emitted[0] += 1
            sending.append(asyncio.ensure_future(send(text)))  # queued in this order
            if i % CHAOS_BATCH == 0:
                await asyncio.sleep(pauses.uniform(0.1, 0.6))
        await asyncio.gather(*sending)

    async def killer(clients: list[EventClient]) -> None:
        """SIGKILL at about 30 % and 65 % of the messages emitted, while some are in
        flight (handled, perhaps, but not acknowledged yet); restart after a pause."""
        for share in (0.3, 0.65):
            await rtlab.until(
                lambda at=share * CHAOS_MESSAGES: (
                    emitted[0] >= at and sum(c.queued for c in clients) >= 10
                ),
                timeout=60,
            )
            await off_loop(server.kill)
            counts["kills"] += 1
            await asyncio.sleep(rng.uniform(0.1, 0.6))
            await off_loop(server.start)

    async def freeze_for(proxy: Any, seconds: float) -> None:
        await off_loop(proxy.freeze)
        await asyncio.sleep(seconds)
        await off_loop(proxy.thaw)

    async def chaos(stop: asyncio.Event) -> None:
        """Cuts (closed or reset) and freezes (thawed after a while) at random moments."""
        freezes: dict[int, asyncio.Future[None]] = {}
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rng.uniform(0.05, 0.4))
            if stop.is_set():
                break
            index = rng.randrange(len(proxies))
            if index in freezes and not freezes[index].done():
                continue  # frozen already
            if rng.random() < 0.6:
                await off_loop(proxies[index].cut, rng.random() < 0.5)
                counts["cuts"] += 1
            else:  # shorter or longer than it takes a heartbeat to give up
                freezes[index] = asyncio.ensure_future(
                    freeze_for(proxies[index], rng.uniform(0.2, 2.5))
                )
                counts["freezes"] += 1
        await asyncio.gather(*freezes.values())

    async def main() -> list[EventClient]:
        options = {
            "reconnection": Reconnection(delay=0.05, delay_max=0.5),
            "ping_interval": CHAOS_PING,
            "ping_timeout": CHAOS_PING,
            "open_timeout": 2,
        }
        clients = [
            await joined(proxy.url, user, "r", **options)
            for proxy, user in zip(proxies, CHAOS_USERS, strict=True)
        ]
        stop = asyncio.Event()
        chaotic = asyncio.ensure_future(chaos(stop))
        killing = asyncio.ensure_future(killer(clients))
        await asyncio.gather(
            *(
                sender(client, sent[client.user], random.Random(f"{CHAOS_SEED}-{client.user}"))
                for client in clients
            )
        )
        stop.set()
        await chaotic
        await killing
        for proxy in proxies:
            await off_loop(proxy.thaw)
        # Catching up: each client waits for the last messages (bounded), then a round trip.
        for client in clients:
            await client.wait_for("receive-message", CHAOS_MESSAGES, timeout=30)
            await usable(client)
        return clients

    try:
        clients = run(main(), timeout=80)
    finally:
        for proxy in proxies:
            proxy.stop()
        server.stop()

    everything = sorted(text for texts in sent.values() for text in texts)
    received = {}
    for client in clients:
        messages = [e.data for e in client.events("receive-message")]
        texts = [m["message"] for m in messages]
        received[client.user] = len(texts)
        assert sorted(texts) == everything, f"{client.user}: not every message exactly once"
        assert [m["seq"] for m in messages] == list(range(1, CHAOS_MESSAGES + 1)), client.user
        for user in CHAOS_USERS:  # each sender's messages in the sender's order
            assert [t for t in texts if t.rsplit("-", 1)[0] == user] == sent[user], (
                client.user,
                user,
            )
        assert client.errors == [], client.errors
        assert client.queued == 0
    assert failures == []
    assert counts["kills"] == 2
    # The server numbered each message once: 1,000 lines on disk, one per message.
    journal = (tmp_path / "data" / "history.jsonl").read_text().splitlines()
    assert len(journal) == CHAOS_MESSAGES
    print(
        f"\nproof under faults (seed {CHAOS_SEED}, {time.monotonic() - started:.1f} s):"
        f" sent {CHAOS_MESSAGES} ({', '.join(f'{u} {len(t)}' for u, t in sent.items())});"
        f" received {received};"
        f" cuts {counts['cuts']}, freezes {counts['freezes']}, kills {counts['kills']};"
        f" resends acked from disk {counts['acked from disk']};"
        f" reconnects { {c.user: c.reconnects for c in clients} };"
        f" disconnects { {c.user: len(c.events('disconnect')) for c in clients} }"
    )


def test_a_backlog_longer_than_the_rate_limits_burst_arrives_whole_and_in_order():
    """Sent one at a time after a drop, and again after retryAfter when refused."""
    from rtlab.core.ratelimit import TokenBucket

    with (
        rtlab.start_server(rate_limit=TokenBucket(rate=100, burst=20)) as server,
        rtlab.start_proxy(server) as proxy,
    ):

        async def main() -> None:
            alice = await joined(proxy.url, "alice", "lobby")
            bob = await joined(server.url, "bob", "lobby")
            await offline(proxy, alice)
            texts = [f"offline {i}" for i in range(60)]  # three times the burst
            for text in texts:
                await alice.emit("send-message", {"roomId": "lobby", "message": text})
            assert alice.queued == 60
            await off_loop(proxy.thaw)
            await bob.wait_for("receive-message", 60, timeout=20)
            assert said(bob) == texts  # whole, in order, once: nothing refused was lost
            await usable(alice)
            assert alice.queued == 0
            assert alice.rate_limited  # the server said so, and the client slowed down
            assert not [e for e in alice.events("error")]
            await alice.close()
            await bob.close()

        run(main())
