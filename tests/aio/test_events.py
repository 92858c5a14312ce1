"""Protocol v1 on /ws, end to end over real sockets (issue 3).

Each test starts a lab server in the background (``rtlab.start_server``) and talks
to it with ``rtlab.aio.client.EventClient`` inside ``asyncio.run`` or with the
synchronous ``rtlab.connect``. Server-side objects live on the server's loop
thread: they are read through ``server._background.call`` (from async code via
``asyncio.to_thread``, so that the test's own loop keeps running), and handlers
are registered before any client connects.

Waits are explicit: ``wait_for`` with a timeout, or an acknowledged round trip.
A round trip is also how "nothing arrived" is shown: the server writes an event
to a connection before any later acknowledgement on that connection, so once the
acknowledgement is back, everything written earlier has been received.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import re
import socket
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import State
from websockets.sync.client import connect as sync_connect
from websockets.uri import parse_uri

import rtlab
import rtlab.aio.events as events_module
import rtlab.core.envelope as envelope_module
import rtlab.core.room_message as room_message_module
from rtlab.aio.client import KEPT_ERRORS, AckError, EventClient
from rtlab.aio.corked_writes import CorkedWriter
from rtlab.aio.events import Namespace, Session
from rtlab.core.envelope import encode_event
from rtlab.notebook.background import RunningServer

T = TypeVar("T")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


# -- helpers ----------------------------------------------------------------------------


def run(coro: Coroutine[Any, Any, T], timeout: float = 20) -> T:
    """Run a test's async body on a fresh loop, never longer than ``timeout``."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def connect(server: RunningServer, user: str) -> EventClient:
    return await EventClient.connect(server.url, user)


async def on_server(server: RunningServer, function: Callable[..., T], *args: Any) -> T:
    """Call ``function`` on the server's loop thread, from async test code."""
    return await asyncio.to_thread(server._background.call, function, *args)


def members(namespace: Namespace, room: str) -> list[str]:
    return sorted(s.user for s in namespace.rooms.members(room))


async def usable(client: EventClient, ns: str = "/") -> None:
    """An acknowledged round trip: proves the connection works, and flushes what came before."""
    reply = await client.emit("leave-room", "no-such-room", ns=ns, ack=True)
    assert reply == {"roomId": "no-such-room"}


def builtin(answer: dict[str, Any]) -> dict[str, Any]:
    """A join-room ack without lesson 09's history and presence (tests/aio/test_chat.py)."""
    return {k: v for k, v in answer.items() if k not in ("history", "presence")}


async def close_all(*clients: EventClient) -> None:
    for client in clients:
        await client.close()


# -- join-room / user-joined ------------------------------------------------------------


def test_join_room_tells_the_others_already_there_not_the_joiner(server):
    async def main() -> None:
        alice, bob, carol = [await connect(server, u) for u in ("alice", "bob", "carol")]
        joined = await alice.emit("join-room", "lobby", ack=True)
        assert builtin(joined) == {"roomId": "lobby", "members": ["alice"], "seq": 0}
        joined = await bob.emit("join-room", "lobby", ack=True)
        assert builtin(joined) == {"roomId": "lobby", "members": ["alice", "bob"], "seq": 0}
        assert await alice.wait_for("user-joined") == [{"userId": "bob", "roomId": "lobby"}]
        await carol.emit("join-room", "lobby", ack=True)
        assert await alice.wait_for("user-joined", 2) == [
            {"userId": "bob", "roomId": "lobby"},
            {"userId": "carol", "roomId": "lobby"},
        ]
        assert await bob.wait_for("user-joined") == [{"userId": "carol", "roomId": "lobby"}]
        # Joining again changes nothing and tells nobody.
        again = await bob.emit("join-room", "lobby", ack=True)
        assert builtin(again) == {"roomId": "lobby", "members": ["alice", "bob", "carol"], "seq": 0}
        for client in (alice, bob, carol):
            await usable(client)
        assert len(alice.events("user-joined")) == 2
        assert len(bob.events("user-joined")) == 1
        assert carol.events("user-joined") == []  # the joiner is not told about itself
        await close_all(alice, bob, carol)

    run(main())


# -- send-message / receive-message -----------------------------------------------------


def test_send_message_reaches_every_member_sender_included_and_no_one_else(server):
    async def main() -> None:
        alice, bob, carol = [await connect(server, u) for u in ("alice", "bob", "carol")]
        await alice.emit("join-room", "lobby", ack=True)
        await bob.emit("join-room", "lobby", ack=True)
        await carol.emit("join-room", "games", ack=True)
        before = datetime.now(UTC)
        reply = await alice.emit("send-message", {"roomId": "lobby", "message": "hi ✓"}, ack=True)
        assert reply == {"roomId": "lobby", "seq": 1, "delivered": 2}
        for client in (alice, bob):
            [message] = await client.wait_for("receive-message")
            assert set(message) == {"userId", "roomId", "message", "timestamp", "seq"}
            assert message["seq"] == 1  # the room's first message
            assert message["userId"] == "alice"  # the name from the handshake
            assert message["roomId"] == "lobby"
            assert message["message"] == "hi ✓"
            assert TIMESTAMP.fullmatch(message["timestamp"]), message["timestamp"]
            sent = datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
            assert before - timedelta(seconds=1) <= sent <= datetime.now(UTC)
        await usable(carol)
        assert carol.events("receive-message") == []  # a non-member never receives
        await close_all(alice, bob, carol)

    run(main())


def test_a_non_member_cannot_send_to_a_room(server):
    async def main() -> None:
        alice, mallory = await connect(server, "alice"), await connect(server, "mallory")
        await alice.emit("join-room", "lobby", ack=True)
        with pytest.raises(AckError) as caught:
            await mallory.emit("send-message", {"roomId": "lobby", "message": "hi"}, ack=True)
        assert caught.value.code == "not_member"
        assert "join 'lobby'" in caught.value.message
        await usable(alice)
        assert alice.events("receive-message") == []
        await close_all(alice, mallory)

    run(main())


# -- broadcast --------------------------------------------------------------------------


def test_broadcast_reaches_every_connected_client_of_the_namespace(server):
    async def main() -> None:
        alice, bob, carol = [await connect(server, u) for u in ("alice", "bob", "carol")]
        await bob.emit("join-room", "lobby", ack=True)  # rooms do not matter
        assert await alice.emit("broadcast", "hello all", ack=True) == {"delivered": 3}
        for client in (alice, bob, carol):
            [message] = await client.wait_for("broadcast-message")
            assert message["userId"] == "alice"
            assert message["message"] == "hello all"
            assert TIMESTAMP.fullmatch(message["timestamp"])
        # In /chat, only the clients connected to /chat.
        await alice.emit("connect", ns="/chat", ack=True)
        await bob.emit("connect", ns="/chat", ack=True)
        assert await bob.emit("broadcast", "chat only", ns="/chat", ack=True) == {"delivered": 2}
        for client in (alice, bob):
            [message] = await client.wait_for("broadcast-message", ns="/chat")
            assert message["message"] == "chat only"
        await usable(carol)
        assert len(carol.events("broadcast-message")) == 1  # only the one in "/"
        assert carol.events(ns="/chat") == []
        await close_all(alice, bob, carol)

    run(main())


# -- leave-room and disconnecting: user-left --------------------------------------------


def test_leave_room_and_disconnect_tell_the_others_user_left(server):
    async def main() -> None:
        alice, bob, carol = [await connect(server, u) for u in ("alice", "bob", "carol")]
        for client in (alice, bob, carol):
            await client.emit("join-room", "lobby", ack=True)
        assert await bob.emit("leave-room", "lobby", ack=True) == {"roomId": "lobby"}
        for client in (alice, carol):
            assert await client.wait_for("user-left") == [{"userId": "bob", "roomId": "lobby"}]
        await usable(bob)
        assert bob.events("user-left") == []  # the leaver is not told
        # Leaving again is harmless and tells nobody.
        await bob.emit("leave-room", "lobby", ack=True)
        await carol.close()  # disconnecting leaves every room
        assert await alice.wait_for("user-left", 2) == [
            {"userId": "bob", "roomId": "lobby"},
            {"userId": "carol", "roomId": "lobby"},
        ]
        await usable(bob)
        assert bob.events("user-left") == []
        await close_all(alice, bob)

    run(main())


def test_disconnecting_leaves_rooms_in_every_namespace(server):
    async def main() -> None:
        alice, bob = await connect(server, "alice"), await connect(server, "bob")
        for client in (alice, bob):
            await client.emit("join-room", "r1", ack=True)
            await client.emit("join-room", "r2", ns="/chat", ack=True)
        await bob.close()
        assert await alice.wait_for("user-left") == [{"userId": "bob", "roomId": "r1"}]
        assert await alice.wait_for("user-left", ns="/chat") == [{"userId": "bob", "roomId": "r2"}]
        await alice.close()

    run(main())


# -- acknowledgements -------------------------------------------------------------------


def test_acks_carry_the_handler_result_or_an_error(server):
    @server.server.on("add")
    def add(session: Session, data: Any) -> int:
        return data["a"] + data["b"]

    @server.server.on("nothing")
    def nothing(session: Session, data: Any) -> None:
        return None

    async def main() -> None:
        alice = await connect(server, "alice")
        assert await alice.emit("add", {"a": 2, "b": 3}, ack=True) == 5
        assert await alice.emit("nothing", ack=True) is None
        assert await alice.emit("add", {"a": 1, "b": 1}) is None  # no id, no ack
        with pytest.raises(AckError) as caught:
            await alice.emit("no-such-event", ack=True)
        error = caught.value
        assert error.code == "unknown_event"
        assert error.message == "no handler for 'no-such-event' in '/'"
        assert str(error) == "unknown_event: no handler for 'no-such-event' in '/'"
        await usable(alice)
        assert alice.events("error") == []  # an event with an id is answered by its ack
        await alice.close()

    run(main())


def test_the_ack_comes_back_on_the_id_the_client_sent(server):
    with sync_connect(f"{server.url}/ws?user=alice") as ws:
        ws.send(encode_event("join-room", "lobby", id=41))
        ws.send(encode_event("leave-room", "lobby", id=0))
        ws.send(encode_event("join-room", "lobby"))  # no id: no answer
        ws.send(encode_event("leave-room", "lobby", id=2**53 - 1))
        replies = [json.loads(ws.recv(timeout=5)) for _ in range(3)]
    replies[0]["data"] = builtin(replies[0]["data"])
    assert replies == [
        {"ack": 41, "data": {"roomId": "lobby", "members": ["alice"], "seq": 0}},
        {"ack": 0, "data": {"roomId": "lobby"}},
        {"ack": 2**53 - 1, "data": {"roomId": "lobby"}},
    ]


# -- malformed input --------------------------------------------------------------------

MALFORMED = [
    # (what the client sends, the error's code, words in its message, the error's ns)
    ("not json at all", "invalid_json", "not valid JSON", "/"),
    ("[" * 100_000, "invalid_json", "nested too deeply", "/"),
    ("[1, 2]", "invalid", "JSON object", "/"),
    ('{"event": "bad name"}', "invalid", "event must be", "/"),
    ('{"event": "x", "extra": 1}', "invalid", "unexpected field 'extra'", "/"),
    ('{"event": "x", "id": -1}', "invalid", "id must be", "/"),
    ('{"event": "no-such-event"}', "unknown_event", "no handler for 'no-such-event'", "/"),
    ('{"event": "join-room", "data": "r", "ns": "/nope"}', "unknown_namespace", "/nope", "/nope"),
    ('{"event": "join-room", "data": "r", "ns": "/chat"}', "not_connected", "connect to", "/chat"),
    (b"\x00\x01binary", "invalid", "binary frame: the envelope's length is", "/"),
    ('{"event": "send-message", "data": {"message": "hi"}}', "invalid", "roomId", "/"),
    ('{"event": "send-message", "data": "hi"}', "invalid", "data must be an object", "/"),
    (
        json.dumps({"event": "send-message", "data": {"roomId": "lobby", "message": "x" * 501}}),
        "invalid",
        "message is 501 characters; the limit is 500",
        "/",
    ),
    (
        json.dumps({"event": "send-message", "data": {"roomId": "lobby", "message": "  "}}),
        "invalid",
        "message must not be empty",
        "/",
    ),
    ('{"event": "join-room", "data": "has spaces"}', "invalid", "data must be a room id", "/"),
    ('{"event": "join-room", "data": 42}', "invalid", "data must be a room id", "/"),
    ('{"event": "broadcast", "data": ["x"]}', "invalid", "data must be a string", "/"),
    ('{"event": "disconnect"}', "invalid", "cannot be left", "/"),
]


def test_malformed_input_gets_an_error_event_and_the_connection_stays_usable(server):
    async def main() -> None:
        alice = await connect(server, "alice")
        await alice.emit("join-room", "lobby", ack=True)
        seen: collections.Counter[str] = collections.Counter()
        for frame, code, words, ns in MALFORMED:
            await alice.connection.send(frame)
            seen[ns] += 1
            errors = await alice.wait_for("error", seen[ns], ns=ns)
            error = errors[-1]
            assert error["code"] == code, (frame[:60], error)
            assert words in error["message"], (frame[:60], error)
            assert "ref" not in error  # no id, or none readable
            await usable(alice)  # and the connection still works
        assert not alice.closed
        assert alice.events("receive-message") == []
        await alice.close()

    run(main())


def test_a_refused_event_with_a_readable_id_gets_ref_or_an_ack_error(server):
    async def main() -> None:
        alice = await connect(server, "alice")
        await alice.connection.send('{"event": "x", "extra": 1, "id": 77}')
        [error] = await alice.wait_for("error")
        assert error == {"code": "invalid", "message": "unexpected field 'extra'", "ref": 77}
        # Through the client: the error event with ref fails the pending emit.
        with pytest.raises(AckError) as caught:
            await alice.emit("bad name!", ack=True)
        assert caught.value.code == "invalid"
        assert "event must be" in caught.value.message
        await usable(alice)
        await alice.close()

    run(main())


@pytest.mark.parametrize(
    ("event", "data", "code", "words"),
    [
        ("send-message", {"message": "hi"}, "invalid", "roomId must be a room id"),
        ("send-message", {"roomId": "lobby", "message": "x" * 501}, "invalid", "limit is 500"),
        ("send-message", {"roomId": "lobby", "message": "x" * 500}, None, None),  # the limit
        ("send-message", {"roomId": "a room", "message": "hi"}, "invalid", "roomId must be"),
        ("send-message", {"roomId": "games", "message": "hi"}, "not_member", "join 'games'"),
        ("join-room", "has spaces", "invalid", "data must be a room id"),
        ("join-room", "x" * 65, "invalid", "data must be a room id"),
        ("join-room", None, "invalid", "data must be a room id"),
        ("leave-room", ["lobby"], "invalid", "data must be a room id"),
        ("broadcast", "", "invalid", "data must not be empty"),
        ("no-such-event", None, "unknown_event", "no handler"),
    ],
)
def test_invalid_payloads_get_an_ack_error_and_the_connection_stays_usable(
    server, event, data, code, words
):
    async def main() -> None:
        alice = await connect(server, "alice")
        await alice.emit("join-room", "lobby", ack=True)
        if code is None:
            assert await alice.emit(event, data, ack=True) == {
                "roomId": "lobby",
                "seq": 1,
                "delivered": 1,
            }
        else:
            with pytest.raises(AckError) as caught:
                await alice.emit(event, data, ack=True)
            assert caught.value.code == code
            assert words in caught.value.message
        await usable(alice)
        await alice.close()

    run(main())


def test_unknown_and_unconnected_namespaces_are_refused_by_ack(server):
    async def main() -> None:
        alice = await connect(server, "alice")
        with pytest.raises(AckError) as caught:  # the client connects to /nope first
            await alice.emit("join-room", "r", ns="/nope", ack=True)
        assert caught.value.code == "unknown_namespace"
        assert caught.value.message == "no namespace '/nope'"
        # Not connected to /chat: bypass the client's automatic connect.
        with pytest.raises(AckError) as caught:
            await alice._request("join-room", "r", "/chat", 5)
        assert caught.value.code == "not_connected"
        await usable(alice)
        await alice.close()

    run(main())


def test_a_message_with_a_lone_surrogate_is_delivered_or_refused_not_internal(server):
    """``"\\ud800"`` is valid JSON (a browser's JSON.stringify writes it for a lone
    surrogate). The server may refuse it as ``invalid`` or deliver it; answering
    ``internal`` blames the server for the client's input, and delivers nothing."""

    async def main() -> None:
        alice = await connect(server, "alice")
        await alice.emit("join-room", "lobby", ack=True)
        await alice.connection.send(
            '{"event": "send-message", "data": {"roomId": "lobby", "message": "x\\ud800"}}'
        )
        await usable(alice)
        codes = [e.data["code"] for e in alice.events("error")]
        delivered = len(alice.events("receive-message"))
        assert (codes, delivered) in [([], 1), (["invalid"], 0)], (codes, delivered)
        await alice.close()

    run(main())


def test_an_ack_holding_a_lone_surrogate_does_not_kill_the_connection(server):
    @server.server.on("echo")
    def echo(session: Session, data: Any) -> Any:
        return data

    async def main() -> None:
        alice = await connect(server, "alice")
        await alice.connection.send('{"event": "echo", "data": "y\\ud800", "id": 900}')
        await usable(alice)  # raises ConnectionClosed if the server dropped the connection
        assert alice.close_code is None
        await alice.close()

    run(main())


# -- handlers on the server -------------------------------------------------------------


def test_custom_handlers_sync_and_async_return_the_ack(server):
    chat = server.server.namespace("/chat")
    calls: list[tuple[str, Any]] = []

    @server.server.on("ping-me")
    def ping_me(session: Session, data: Any) -> dict[str, Any]:
        calls.append((session.user, data))
        return {"pong": data, "user": session.user}

    @chat.on("whoami")
    async def whoami(session: Session, data: Any) -> str:
        await asyncio.sleep(0)  # really async: awaited by the server
        return f"{session.user} in /chat"

    @server.server.on("shout", ns="/notifications")
    async def shout(session: Session, data: Any) -> int:
        return len(data)

    async def main() -> None:
        alice = await connect(server, "alice")
        assert await alice.emit("ping-me", [1, "two"], ack=True) == {
            "pong": [1, "two"],
            "user": "alice",
        }
        assert await alice.emit("whoami", ns="/chat", ack=True) == "alice in /chat"
        assert await alice.emit("shout", "abc", ns="/notifications", ack=True) == 3
        with pytest.raises(AckError) as caught:  # handlers belong to their namespace
            await alice.emit("whoami", ack=True)
        assert caught.value.code == "unknown_event"
        await alice.close()

    run(main())
    assert calls == [("alice", [1, "two"])]


def test_a_failing_handler_answers_internal_and_the_server_keeps_serving(server):
    @server.server.on("boom")
    def boom(session: Session, data: Any) -> None:
        raise RuntimeError("kaboom")

    @server.server.on("aboom")
    async def aboom(session: Session, data: Any) -> None:
        await asyncio.sleep(0)
        raise KeyError("async kaboom")

    async def main() -> None:
        alice, bob = await connect(server, "alice"), await connect(server, "bob")
        await alice.emit("join-room", "lobby", ack=True)
        await bob.emit("join-room", "lobby", ack=True)
        for event in ("boom", "aboom"):
            with pytest.raises(AckError) as caught:
                await alice.emit(event, ack=True)
            assert caught.value.code == "internal"
            assert caught.value.message == f"the {event!r} handler failed"
            assert "kaboom" not in caught.value.message  # no server internals leak out
        await alice.emit("boom")  # no id: an error event instead
        [error] = await alice.wait_for("error")
        assert error == {"code": "internal", "message": "the 'boom' handler failed"}
        # Both connections still work, and bob never noticed.
        await usable(alice)
        assert await bob.emit("send-message", {"roomId": "lobby", "message": "ok"}, ack=True) == {
            "roomId": "lobby",
            "seq": 1,
            "delivered": 2,
        }
        assert [m["message"] for m in await alice.wait_for("receive-message")] == ["ok"]
        assert bob.events("error") == []
        await close_all(alice, bob)

    run(main())
    assert sum("handler for 'boom' in / failed" in line for line in server.log) == 2
    assert any("KeyError" in line for line in server.log)


# -- namespaces -------------------------------------------------------------------------


def test_namespaces_have_their_own_rooms_over_one_connection(server):
    chat = server.server.namespace("/chat")
    notifications = server.server.namespace("/notifications")

    async def main() -> None:
        alice, bob, carol = [await connect(server, u) for u in ("alice", "bob", "carol")]
        # alice is in "room" in both namespaces, over her one connection.
        assert await alice.emit("connect", ns="/chat", ack=True) == {"ns": "/chat"}
        await alice.emit("join-room", "room", ns="/chat", ack=True)
        await alice.emit("join-room", "room", ns="/notifications", ack=True)
        await bob.emit("join-room", "room", ns="/chat", ack=True)
        await carol.emit("join-room", "room", ns="/notifications", ack=True)
        assert await on_server(server, members, chat, "room") == ["alice", "bob"]
        assert await on_server(server, members, notifications, "room") == ["alice", "carol"]
        assert await on_server(server, lambda: list(server.server.namespace("/").rooms)) == []
        assert len(server.clients) == 3  # one connection each

        reply = await bob.emit(
            "send-message", {"roomId": "room", "message": "c"}, ns="/chat", ack=True
        )
        assert reply == {"roomId": "room", "seq": 1, "delivered": 2}
        [got] = await alice.wait_for("receive-message", ns="/chat")
        assert got["message"] == "c"
        reply = await carol.emit(
            "send-message", {"roomId": "room", "message": "n"}, ns="/notifications", ack=True
        )
        assert reply == {"roomId": "room", "seq": 1, "delivered": 2}  # numbered per namespace
        [got] = await alice.wait_for("receive-message", ns="/notifications")
        assert got["message"] == "n"
        for client in (alice, bob, carol):
            await usable(client)
        # Nothing crossed over between namespaces.
        assert [e.data["message"] for e in bob.events("receive-message")] == ["c"]
        assert [e.data["message"] for e in carol.events("receive-message")] == ["n"]
        assert {e.ns for e in bob.events()} == {"/chat"}
        assert {e.ns for e in carol.events()} == {"/notifications"}
        assert alice.events("receive-message", ns="/") == []
        # "room" in / is yet another room: nobody is in it.
        with pytest.raises(AckError) as caught:
            await alice.emit("send-message", {"roomId": "room", "message": "x"}, ack=True)
        assert caught.value.code == "not_member"

        # Leaving /chat leaves its rooms (the others are told) and nothing else.
        assert await alice.emit("disconnect", ns="/chat", ack=True) == {"ns": "/chat"}
        assert await bob.wait_for("user-left", ns="/chat") == [
            {"userId": "alice", "roomId": "room"}
        ]
        assert await on_server(server, members, chat, "room") == ["bob"]
        assert await on_server(server, members, notifications, "room") == ["alice", "carol"]
        with pytest.raises(AckError) as caught:  # "/" cannot be left
            await alice.emit("disconnect", ack=True)
        assert caught.value.code == "invalid"
        await close_all(alice, bob, carol)

    run(main())


def test_empty_rooms_disappear(server):
    chat = server.server.namespace("/chat")

    async def main() -> None:
        alice, bob = await connect(server, "alice"), await connect(server, "bob")
        for client in (alice, bob):
            await client.emit("join-room", "temp", ns="/chat", ack=True)
        assert await on_server(server, lambda: list(chat.rooms)) == ["temp"]
        await alice.emit("leave-room", "temp", ns="/chat", ack=True)
        assert await on_server(server, lambda: list(chat.rooms)) == ["temp"]
        await bob.close()  # the last member disconnects
        await asyncio.to_thread(  # not from this loop's thread: that would nest loops
            rtlab.wait_until, lambda: server._background.call(len, chat.rooms) == 0, 5, "no rooms"
        )
        assert await on_server(server, lambda: "temp" in chat.rooms) is False
        await alice.close()

    run(main())


# -- emitting from the server -----------------------------------------------------------


def test_server_emit_to_everyone_to_a_room_and_except_the_sender(server):
    ns = server.server.namespace("/")

    @server.server.on("enter-vip")
    def enter_vip(session: Session, data: Any) -> list[str]:
        ns.join(session, "vip")  # the server puts a client in a room
        return members(ns, "vip")

    @server.server.on("leave-vip")
    def leave_vip(session: Session, data: Any) -> bool:
        return ns.leave(session, "vip")

    @server.server.on("tell-others")
    def tell_others(session: Session, data: Any) -> int:
        return ns.emit("note", {"from": session.user}, to=data, skip=session)

    async def main() -> None:
        alice, bob, carol = [await connect(server, u) for u in ("alice", "bob", "carol")]
        assert await alice.emit("enter-vip", ack=True) == ["alice"]
        assert await bob.emit("enter-vip", ack=True) == ["alice", "bob"]

        assert await on_server(server, server.server.emit, "news", {"n": 1}) == 3
        for client in (alice, bob, carol):
            assert await client.wait_for("news") == [{"n": 1}]

        sent = await on_server(server, lambda: server.server.emit("news", {"n": 2}, to="vip"))
        assert sent == 2
        for client in (alice, bob):
            assert await client.wait_for("news", 2) == [{"n": 1}, {"n": 2}]

        assert await alice.emit("tell-others", "vip", ack=True) == 1  # bob, not alice
        assert await bob.wait_for("note") == [{"from": "alice"}]

        assert await bob.emit("leave-vip", ack=True) is True
        assert await on_server(server, lambda: server.server.emit("news", 3, to="vip")) == 1
        assert await on_server(server, lambda: server.server.emit("news", 4, to="nobody")) == 0
        assert await alice.wait_for("news", 3) == [{"n": 1}, {"n": 2}, 3]
        for client in (alice, bob, carol):
            await usable(client)
        assert [e.data for e in carol.events("news")] == [{"n": 1}]
        assert [e.data for e in bob.events("news")] == [{"n": 1}, {"n": 2}]
        assert alice.events("note") == []
        await close_all(alice, bob, carol)

    run(main())


def test_server_emit_in_a_namespace_reaches_only_its_clients(server):
    async def main() -> None:
        alice, bob = await connect(server, "alice"), await connect(server, "bob")
        await alice.emit("connect", ns="/notifications", ack=True)
        emit = server.server.emit
        assert await on_server(server, lambda: emit("alert", "x", ns="/notifications")) == 1
        assert await alice.wait_for("alert", ns="/notifications") == ["x"]
        await usable(bob)
        assert bob.events("alert") == []
        await close_all(alice, bob)

    run(main())


# -- fan-out: one encoding, one write per member per turn, no task per recipient ------------


def spy_on_writes(server: Any, room: str) -> dict[str, list[bytes]]:
    """On the server's thread: record every ``transport.write`` to the members of ``room``."""
    writes: dict[str, list[bytes]] = {}
    for session in server.namespace("/").rooms.members(room):
        transport = session.connection.transport
        real = transport.write

        def write(data: Any, real: Any = real, user: str = session.user) -> None:
            writes.setdefault(user, []).append(bytes(data))
            real(data)

        transport.write = write
    return writes


def test_a_room_message_is_encoded_once_and_corked_into_one_write_per_member(server, monkeypatch):
    ns = server.server.namespace("/")
    users = [f"member{i:02d}" for i in range(19)]
    sender = RawClient(server, "sender")
    try:
        sender.send(encode_event("join-room", "big", id=1))
        assert sender.read_until(Opcode.TEXT) is not None

        async def main() -> None:
            clients = await asyncio.gather(*(connect(server, u) for u in users))
            for client in clients:
                await client.emit("join-room", "big", ack=True)
            writes = await on_server(server, spy_on_writes, server.server, "big")
            assert len(writes) == 0

            events: list[str] = []  # the receive-message texts made
            acks: list[str] = []
            dumps: list[str] = []  # what went through the JSON encoder
            tasks: list[tuple[int, int]] = []
            real_event, real_ack = room_message_module.event, events_module.encode_ack
            real_dumps = envelope_module._dumps

            def counting_event(ns: str, payload: dict[str, Any]) -> str | bytes:
                text = real_event(ns, payload)
                events.append(text)
                return text

            def counting_ack(id: int, data: Any = None) -> str | bytes:
                text = real_ack(id, data)
                acks.append(text)
                return text

            def counting_dumps(message: dict[str, Any]) -> str | bytes:
                text = real_dumps(message)
                dumps.append(text)
                return text

            real_handler = ns.handlers["send-message"]

            def measured(session: Session, data: Any) -> Any:
                before = len(asyncio.all_tasks())
                result = real_handler(session, data)
                tasks.append((before, len(asyncio.all_tasks())))
                return result

            monkeypatch.setattr(room_message_module, "event", counting_event)
            monkeypatch.setattr(events_module, "encode_ack", counting_ack)
            monkeypatch.setattr(envelope_module, "_dumps", counting_dumps)
            monkeypatch.setitem(ns.handlers, "send-message", measured)

            # Five messages, with acks, in one TCP segment: the server reads them in one
            # turn of its loop.
            texts = [f"message {i}" for i in range(5)]
            for id, text in enumerate(texts, start=2):
                message = {"roomId": "big", "message": text}
                sender.protocol.send_text(encode_event("send-message", message, id=id).encode())
            sender.sock.sendall(b"".join(sender.protocol.data_to_send()))
            for client in clients:
                got = await client.wait_for("receive-message", 5)
                assert [m["message"] for m in got] == texts

            # One text per message, not per member, and the sender's five acks, all
            # written out (rtlab/core/room_message.py): none through the JSON encoder.
            assert len(events) == 5 and all('"receive-message"' in text for text in events)
            assert len(acks) == 5 and all(text.startswith('{"ack":') for text in acks)
            assert not [t for t in dumps if '"receive-message"' in t or t.startswith('{"ack":')]
            assert sorted(writes) == sorted([*users, "sender"])
            for user, written in writes.items():
                # All five messages in one system call; the sender's acks in it too.
                assert len(written) == 1, (user, len(written))
                assert written[0].count(b'"receive-message"') == 5, user
            assert writes["sender"][0].count(b'{"ack":') == 5
            assert all(after == before for before, after in tasks), tasks
            print(
                f"fan-out of 5 messages to 20: {len(events)} encodings, one write per member"
                f" ({len(writes['member00'][0])} bytes)"
            )
            await close_all(*clients)

        run(main())
    finally:
        sender.close()


# -- events handled as they are read (InlineConnection), in order ---------------------------


def test_events_are_handled_as_they_are_read_and_in_order_around_an_async_handler(server):
    ns = server.server.namespace("/")
    log: list[tuple[str, Any, str]] = []  # (event, data, where it was handled)
    slow_tasks: set[asyncio.Task[Any] | None] = set()

    def where() -> str:
        task = asyncio.current_task()
        return "read" if task is None else "after slow" if task in slow_tasks else "other"

    @ns.on("fast")
    def fast(session: Session, data: Any) -> Any:
        log.append(("fast", data, where()))
        return data

    @ns.on("slow")
    async def slow(session: Session, data: Any) -> Any:
        slow_tasks.add(asyncio.current_task())
        await asyncio.sleep(0.05)
        log.append(("slow", data, where()))
        return data

    client = RawClient(server, "alice")
    try:

        def send_together(*events: tuple[str, int]) -> list[int]:
            """Send the events in one TCP segment; the ids of their acks, as they come."""
            for event, id in events:
                client.protocol.send_text(encode_event(event, id, id=id).encode())
            client.sock.sendall(b"".join(client.protocol.data_to_send()))
            acks: list[int] = []
            while len(acks) < len(events):
                client.frames.clear()
                assert client.receive()
                acks += [json.loads(f.data)["ack"] for f in client.frames]
            return acks

        assert send_together(("fast", 1), ("slow", 2), ("fast", 3), ("fast", 4)) == [1, 2, 3, 4]
        assert send_together(("fast", 5)) == [5]
    finally:
        client.close()
    # 1 and 5 found the connection idle: handled in data_received, outside any task. 3 and
    # 4 came while 2 was still awaiting: they waited in the session's backlog, and 2's own
    # task handled them once 2 was done.
    assert log == [
        ("fast", 1, "read"),
        ("slow", 2, "after slow"),
        ("fast", 3, "after slow"),
        ("fast", 4, "after slow"),
        ("fast", 5, "read"),
    ]


def test_past_the_backlog_events_wait_in_websockets_queue_and_keep_their_order(server):
    ns = server.server.namespace("/")
    handled: list[tuple[int, bool]] = []  # (id, from the backlog: in a slow one's task)
    slow_tasks: set[asyncio.Task[Any] | None] = set()

    @ns.on("slow")
    async def slow(session: Session, data: Any) -> Any:
        slow_tasks.add(asyncio.current_task())
        await asyncio.sleep(0.05)
        handled.append((data["n"], False))
        return data["n"]

    left: list[int] = []  # the backlog's bytes as the last event is handled

    @ns.on("fast")
    def fast(session: Session, data: Any) -> Any:
        handled.append((data["n"], asyncio.current_task() in slow_tasks))
        if data["n"] == 39:
            left.append(session.backlogged)
        return data["n"]

    client = RawClient(server, "alice")
    pad = "x" * 1000  # 40 of these are past BACKLOG (16 KiB): some must wait elsewhere
    events = [("slow" if n % 10 == 0 else "fast", {"n": n, "pad": pad}) for n in range(40)]
    try:
        for n, (event, data) in enumerate(events):
            client.protocol.send_text(encode_event(event, data, id=n).encode())
        client.sock.sendall(b"".join(client.protocol.data_to_send()))
        acks: list[int] = []
        while len(acks) < len(events):
            client.frames.clear()
            assert client.receive()
            acks += [json.loads(f.data)["ack"] for f in client.frames]
    finally:
        client.close()
    assert acks == list(range(40))
    assert [n for n, _ in handled] == list(range(40))
    from_backlog = {n for n, backlog in handled if backlog and n % 10}
    assert from_backlog and len(from_backlog) < 36  # both ways were taken
    assert left == [0]  # nothing counted twice or forgotten


def test_an_async_handler_still_running_when_its_client_leaves_finishes_first(server):
    ns = server.server.namespace("/")
    log: list[str] = []

    @ns.on("slow")
    async def slow(session: Session, data: Any) -> None:
        await asyncio.sleep(0.1)
        log.append(f"handled {data}")

    ns.on_leave.append(lambda session, room: log.append(f"{session.user} left {room}"))

    client = RawClient(server, "alice")
    try:
        client.send(encode_event("join-room", "lobby", id=1))
        assert client.read_until(Opcode.TEXT) is not None
        client.send(encode_event("slow", "last words"))  # handled inline, then awaited
    finally:
        client.close()  # at once: the server sees the end of the stream mid-handler
    rtlab.wait_until(lambda: server.clients == [], what="alice to be gone")
    # As when the connection's own task ran the handler: it finishes, then alice leaves.
    assert log == ["handled last words", "alice left lobby"]


# -- a slow consumer cannot stall the room ------------------------------------------------


class RawClient:
    """A /ws client on a blocking socket, reading only when told to (websockets' sans-I/O).

    ``SO_RCVBUF`` is set before connecting, so the kernel advertises a small window
    and cannot soak up what the server sends while this client does not read.
    """

    def __init__(self, server: RunningServer, user: str, rcvbuf: int = 4096) -> None:
        uri = parse_uri(f"{server.url}/ws?user={user}")
        self.protocol = ClientProtocol(uri, max_size=None)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect((uri.host, uri.port))
        self.frames: list[Frame] = []
        self.bytes_read = 0
        self.protocol.send_request(self.protocol.connect())
        self.flush()
        while self.protocol.state is State.CONNECTING:
            self.receive()
        assert self.protocol.handshake_exc is None

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self.flush()

    def receive(self) -> bool:
        """Read once from the socket; False at the end of the stream."""
        data = self.sock.recv(65536)
        self.bytes_read += len(data)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self.frames.extend(e for e in self.protocol.events_received() if isinstance(e, Frame))
        return bool(data)

    def read_until(self, opcode: Opcode) -> Frame | None:
        """Read until a frame with ``opcode`` arrives; None if the stream ends first."""
        seen = 0
        while True:
            for frame in self.frames[seen:]:
                if frame.opcode is opcode:
                    return frame
            seen = len(self.frames)
            if not self.receive():
                return None

    def close(self) -> None:
        self.sock.close()


def shrink_send_buffer(server: Any, user: str) -> int:
    """On the server's thread: a small kernel send buffer for ``user``'s socket.

    On loopback Linux grows a socket's send buffer to megabytes, which would hide
    the server's own buffer behind the kernel's; a fixed small one keeps the test
    small. Returns ``id()`` of the user's connection.
    """
    [session] = [s for s in server.events.sessions.values() if s.user == user]
    sock = session.connection.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return id(session.connection)


def measure_write_buffers(monkeypatch: pytest.MonkeyPatch) -> dict[int, int]:
    """Wrap the hub's writes: the largest write buffer seen right after each, per connection."""
    peaks: dict[int, int] = {}
    real = CorkedWriter.flush

    def measuring_flush(writer: Any, session: Session, connection: Any) -> None:
        real(writer, session, connection)
        if connection.transport is not None:
            size = connection.transport.get_write_buffer_size()
            peaks[id(connection)] = max(peaks.get(id(connection), 0), size)

    monkeypatch.setattr(CorkedWriter, "flush", measuring_flush)
    return peaks


def test_a_member_that_stops_reading_is_dropped_and_cannot_stall_the_room(monkeypatch):
    max_buffer = 256 * 1024
    count = 400
    filler = "🙂" * 495  # 4 bytes each in UTF-8: about 2 kB a message, at the 500-character limit
    texts = [f"{i:03d} {filler}" for i in range(count)]
    one_message = len(encode_event("receive-message", {"message": texts[0]}).encode()) + 200
    peaks = measure_write_buffers(monkeypatch)

    # close_timeout: time enough for the slow client to read its backlog and the close frame.
    with rtlab.start_server(max_buffer=max_buffer, close_timeout=10) as server:
        ns = server.server.namespace("/")
        slow = RawClient(server, "slow")
        try:
            slow.send(encode_event("join-room", "room", id=1))
            ack = slow.read_until(Opcode.TEXT)
            assert ack is not None
            assert builtin(json.loads(ack.data)["data"]) == {
                "roomId": "room",
                "members": ["slow"],
                "seq": 0,
            }
            slow_connection = server._background.call(shrink_send_buffer, server.server, "slow")
            # From here on the slow client reads nothing.

            async def main() -> dict[str, list[str]]:
                alice, bob, carol = [await connect(server, u) for u in ("alice", "bob", "carol")]
                for client in (alice, bob, carol):
                    await client.emit("join-room", "room", ack=True)
                for text in texts:  # alice sends, as fast as the server reads
                    await alice.emit("send-message", {"roomId": "room", "message": text})
                got = {}
                for client in (alice, bob, carol):
                    messages = await client.wait_for("receive-message", count, timeout=15)
                    got[client.user] = [m["message"] for m in messages]
                for client in (bob, carol):  # told that slow is gone
                    assert await client.wait_for("user-left") == [
                        {"userId": "slow", "roomId": "room"}
                    ]
                assert await on_server(server, members, ns, "room") == ["alice", "bob", "carol"]
                sessions = await on_server(server, lambda: server.server.events.sessions.values())
                assert sorted(s.user for s in sessions) == ["alice", "bob", "carol"]
                await close_all(alice, bob, carol)
                return got

            got = run(main(), timeout=30)
            for user in ("alice", "bob", "carol"):  # every message, in order
                assert got[user] == texts, user
            assert server._background.call(lambda: server.server.events.dropped_slow) == 1
            peak = peaks[slow_connection]
            # Dropped when its unsent bytes passed max_buffer: never more than one message over.
            assert max_buffer < peak <= max_buffer + one_message, peak

            # Now the slow client reads: its backlog, then the close frame.
            frame = slow.read_until(Opcode.CLOSE)
            assert frame is not None, "the server aborted instead of sending a close frame"
            close = Close.parse(frame.data)
            assert close.code == 1008
            assert "too slow" in close.reason
            backlog = [json.loads(f.data) for f in slow.frames if f.opcode is Opcode.TEXT]
            received = [
                m["data"]["message"] for m in backlog if m.get("event") == "receive-message"
            ]
            assert 0 < len(received) < count
            assert received == texts[: len(received)]  # a prefix, in order
            slow.flush()  # answer the close: the closing handshake completes
            while slow.receive():  # until the server ends the TCP connection
                pass
            slow.close()
            rtlab.wait_until(lambda: server.clients == [], what="the slow client to be gone")
        finally:
            slow.close()
    print(
        f"\nslow consumer: {count} messages sent; alice, bob, carol each got {len(got['bob'])};"
        f" slow got {len(received)} ({slow.bytes_read} bytes) then close {close.code}"
        f" {close.reason!r}; dropped_slow=1; peak unsent for slow {peak} bytes"
        f" (max_buffer {max_buffer})"
    )


def test_a_dropped_member_that_never_reads_is_let_go_within_the_close_timeout(monkeypatch):
    """Server memory stays bounded only if a dropped client that never reads again is
    disconnected at last: its backlog must not be kept for as long as it stays silent."""
    with rtlab.start_server(max_buffer=64 * 1024, close_timeout=0.5) as server:
        slow = RawClient(server, "slow")
        try:
            slow.send(encode_event("join-room", "room", id=1))
            assert slow.read_until(Opcode.TEXT) is not None
            server._background.call(shrink_send_buffer, server.server, "slow")

            async def main() -> None:
                alice = await connect(server, "alice")
                await alice.emit("join-room", "room", ack=True)
                for i in range(100):
                    await alice.emit(
                        "send-message", {"roomId": "room", "message": f"{i} " + "🙂" * 490}
                    )
                assert await alice.wait_for("user-left") == [{"userId": "slow", "roomId": "room"}]
                await alice.close()

            run(main())
            assert server._background.call(lambda: server.server.events.dropped_slow) == 1
            rtlab.wait_until(
                lambda: all(c.remote != slow.address for c in server.clients),
                timeout=3,
                what="the server to disconnect the dropped client (close_timeout is 0.5 s)",
            )
        finally:
            slow.close()


# -- mid: a resend is acknowledged again, delivered once -----------------------------------


def test_a_resent_mid_is_acked_again_but_delivered_once(server):
    async def main() -> None:
        alice, bob = await connect(server, "alice"), await connect(server, "bob")
        for client in (alice, bob):
            await client.emit("join-room", "lobby", ack=True)
        message = {"roomId": "lobby", "message": "once"}
        first = await alice.emit("send-message", message, ack=True, mid="m-1")
        assert first == {"roomId": "lobby", "seq": 1, "delivered": 2}
        assert await alice.emit("send-message", message, ack=True, mid="m-1") == first
        await alice.emit("send-message", message, mid="m-1")  # without an id: silently dropped
        # Even on a new connection (the offline queue resending after a reconnect).
        await alice.close()
        alice = await connect(server, "alice")
        await alice.emit("join-room", "lobby", ack=True)
        assert await alice.emit("send-message", message, ack=True, mid="m-1") == first
        # Another mid, or another user with the same mid, is a new message.
        assert await alice.emit("send-message", message, ack=True, mid="m-2") == {
            "roomId": "lobby",
            "seq": 2,
            "delivered": 2,
        }
        assert await bob.emit("send-message", message, ack=True, mid="m-1") == {
            "roomId": "lobby",
            "seq": 3,
            "delivered": 2,
        }
        await usable(bob)
        got = [
            (m["userId"], m["message"], m["seq"])
            for m in [e.data for e in bob.events("receive-message")]
        ]
        assert got == [("alice", "once", 1), ("alice", "once", 2), ("bob", "once", 3)]
        # The first alice's "once" and the m-2 one: m-1 was delivered exactly once.
        await close_all(alice, bob)

    run(main())


def test_mids_are_per_namespace(server):
    async def main() -> None:
        alice = await connect(server, "alice")
        await alice.emit("join-room", "r", ack=True)
        await alice.emit("join-room", "r", ns="/chat", ack=True)
        message = {"roomId": "r", "message": "x"}
        await alice.emit("send-message", message, ack=True, mid="same")
        await alice.emit("send-message", message, ns="/chat", ack=True, mid="same")
        assert len(await alice.wait_for("receive-message")) == 1
        assert len(await alice.wait_for("receive-message", ns="/chat")) == 1
        await alice.close()

    run(main())


# -- the handshake: who the user is ------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", "say who you are"),
        ("?user=", "say who you are"),
        ("?name=alice", "say who you are"),
        ("?user=alice&user=bob", "say who you are"),
        ("?user=bad%20name", "user must be 1 to 32"),
        ("?user=-alice", "user must be 1 to 32"),
        ("?user=" + "a" * 33, "user must be 1 to 32"),
        ("?user=%C3%A9", "user must be 1 to 32"),
    ],
)
def test_ws_without_a_good_user_is_refused_with_400(server, query, words):
    with pytest.raises(InvalidStatus) as caught:
        sync_connect(f"{server.url}/ws{query}")
    response = caught.value.response
    assert response.status_code == 400
    assert words in response.body.decode()


def test_user_names_that_are_fine(server):
    for user in ["a", "Alice_1", "bob.smith-2", "x" * 32]:
        with sync_connect(f"{server.url}/ws?user={user}") as ws:
            ws.send(encode_event("join-room", "r", id=1))
            assert json.loads(ws.recv(timeout=5))["data"]["members"] == [user]


def test_anonymous_users_refused_with_403_when_not_allowed():
    with rtlab.start_server(allow_anonymous=False) as server:
        with pytest.raises(InvalidStatus) as caught:
            sync_connect(f"{server.url}/ws?user=alice")
        assert caught.value.response.status_code == 403
        assert "anonymous" in caught.value.response.body.decode()


def test_allow_anonymous_true_accepts_users():
    with (
        rtlab.start_server(allow_anonymous=True) as server,
        sync_connect(f"{server.url}/ws?user=alice") as ws,
    ):
        ws.send(encode_event("leave-room", "r", id=3))
        assert json.loads(ws.recv(timeout=5)) == {"ack": 3, "data": {"roomId": "r"}}


# -- the client ------------------------------------------------------------------------


def test_a_handler_that_fails_at_every_event_leaves_only_the_last_errors(server):
    async def main() -> None:
        alice, bob = await connect(server, "alice"), await connect(server, "bob")
        alice.on("receive-message", lambda data: int(data["message"]) // 0)
        await alice.emit("join-room", "lobby", ack=True)
        await bob.emit("join-room", "lobby", ack=True)
        for n in range(KEPT_ERRORS + 50):
            await bob.emit("send-message", {"roomId": "lobby", "message": str(n)})
        await alice.wait_for("receive-message", KEPT_ERRORS + 50, timeout=10)
        await usable(alice)
        assert len(alice.errors) == KEPT_ERRORS
        failed = "handler for 'receive-message' failed: ZeroDivisionError"
        assert all(error.startswith(failed) for error in alice.errors)
        assert len(alice.events("receive-message")) == KEPT_ERRORS + 50  # all handled
        await alice.close()
        await bob.close()

    run(main())


def test_client_handlers_per_event_sync_async_and_failing(server):
    async def main() -> None:
        alice, bob = await connect(server, "alice"), await connect(server, "bob")
        seen: list[Any] = []
        async_seen: list[Any] = []

        @alice.on("receive-message")
        def on_message(data: Any) -> None:
            seen.append(data["message"])

        async def on_message_async(data: Any) -> None:
            await asyncio.sleep(0)
            async_seen.append(data["message"])

        alice.on("receive-message", on_message_async)
        alice.on("user-joined", lambda data: 1 / 0)  # a failing handler is kept, not raised
        alice.on("receive-message", lambda data: seen.append("chat"), ns="/chat")
        await alice.emit("join-room", "lobby", ack=True)
        await bob.emit("join-room", "lobby", ack=True)
        for text in ("one", "two"):
            await bob.emit("send-message", {"roomId": "lobby", "message": text}, ack=True)
        await usable(alice)  # its ack is read after both messages and their handlers
        assert seen == ["one", "two"]
        assert async_seen == ["one", "two"]
        assert alice.errors == [
            "handler for 'user-joined' failed: ZeroDivisionError('division by zero')"
        ]
        assert [e.event for e in alice.events()] == [
            "user-joined",
            "presence",
            "receive-message",
            "receive-message",
        ]
        assert "alice" in repr(alice) and "connected" in repr(alice)
        await close_all(alice, bob)
        assert alice.closed
        assert alice.close_code == 1000
        assert "closed" in repr(alice)

    run(main())


def test_wait_for_returns_after_the_handlers_of_those_events_ran(server):
    """A cell registers a handler that fills a list or a widget, waits, then prints:
    the wait must not return before the handler of an awaited event has run."""

    async def main() -> None:
        alice, bob = await connect(server, "alice"), await connect(server, "bob")
        order: list[str] = []
        gate = asyncio.Event()

        async def handler(data: Any) -> None:
            await gate.wait()  # any await: a widget update, a database write...
            order.append("handler ran")

        arrived: list[Any] = []
        alice.on("receive-message", arrived.append)  # handlers run in the order registered
        alice.on("receive-message", handler)
        await alice.emit("join-room", "lobby", ack=True)
        await bob.emit("join-room", "lobby", ack=True)
        await bob.emit("send-message", {"roomId": "lobby", "message": "hi"}, ack=True)
        await rtlab.until(lambda: arrived, what="the message to reach alice's handlers")

        async def wait() -> None:
            await alice.wait_for("receive-message")
            order.append("wait_for returned")

        waiting = asyncio.create_task(wait())
        gate.set()
        await waiting
        assert order == ["handler ran", "wait_for returned"]
        await close_all(alice, bob)

    run(main())


def test_wait_for_times_out_saying_how_many_came(server):
    async def main() -> None:
        alice, bob = await connect(server, "alice"), await connect(server, "bob")
        await alice.emit("join-room", "lobby", ack=True)
        await bob.emit("join-room", "lobby", ack=True)
        await alice.wait_for("user-joined")
        with pytest.raises(TimeoutError, match=r"alice: 1 of 2 'user-joined' events within 0.2 s"):
            await alice.wait_for("user-joined", 2, timeout=0.2)
        with pytest.raises(TimeoutError, match="0 of 1 'nothing'"):
            await alice.wait_for("nothing", timeout=0.05)
        await close_all(alice, bob)

    run(main())


def test_ack_timeout_raises_timeout_error_and_the_late_ack_is_ignored(server):
    gate = server._background.call(asyncio.Event)

    @server.server.on("stall")
    async def stall(session: Session, data: Any) -> str:
        await gate.wait()
        return "late"

    async def main() -> None:
        alice = await connect(server, "alice")
        with pytest.raises(TimeoutError):
            await alice.emit("stall", ack=True, timeout=0.2)
        await on_server(server, gate.set)
        await usable(alice)  # the late ack for the abandoned id does no harm
        assert await alice.emit("stall", ack=True) == "late"
        assert alice.errors == []
        await alice.close()

    run(main())


def test_emitting_or_waiting_after_the_server_stopped_raises():
    server = rtlab.start_server()

    async def main() -> None:
        alice = await connect(server, "alice")
        await usable(alice)
        await asyncio.to_thread(server.stop)
        with pytest.raises(ConnectionError, match="connection closed after 0 of 1"):
            await alice.wait_for("anything")
        assert alice.closed
        assert alice.close_code == 1001
        for kwargs in ({}, {"ack": True}, {"ns": "/chat"}):
            with pytest.raises(ConnectionError, match="alice: the client is closed"):
                await alice.emit("broadcast", "anyone?", **kwargs)
        await alice.close()  # closing again is fine

    try:
        run(main())
    finally:
        server.stop()


def test_wait_for_on_a_closed_connection_raises_connection_error(server):
    async def main() -> None:
        alice = await connect(server, "alice")
        await alice.close()
        with pytest.raises(ConnectionError, match="alice: connection closed after 0 of 1 'x'"):
            await alice.wait_for("x")

    run(main())


def test_the_synchronous_face(server):
    joined: list[Any] = []
    with rtlab.connect(server, "alice") as alice, rtlab.connect(server, "bob") as bob:
        assert repr(alice) == "<Client 'alice' connected>"
        assert alice.user == "alice"
        alice.on("user-joined", joined.append)
        assert builtin(alice.emit("join-room", "lobby", ack=True)) == {
            "roomId": "lobby",
            "members": ["alice"],
            "seq": 0,
        }
        assert bob.emit("join-room", "lobby", ack=True)["members"] == ["alice", "bob"]
        assert alice.wait_for("user-joined") == [{"userId": "bob", "roomId": "lobby"}]
        assert joined == [{"userId": "bob", "roomId": "lobby"}]
        assert bob.emit("send-message", {"roomId": "lobby", "message": "hi"}) is None
        [message] = alice.wait_for("receive-message")
        assert (message["userId"], message["message"]) == ("bob", "hi")
        assert [e.event for e in alice.events()] == ["user-joined", "presence", "receive-message"]
        assert alice.events("receive-message", "/")[0].data == message
        with pytest.raises(AckError) as caught:
            alice.emit("send-message", {"roomId": "elsewhere", "message": "x"}, ack=True)
        assert caught.value.code == "not_member"
        with pytest.raises(TimeoutError, match="1 of 2"):
            alice.wait_for("receive-message", 2, timeout=0.1)
        assert alice.emit("connect", ns="/chat", ack=True) == {"ns": "/chat"}
        assert alice.errors == []
    assert alice.closed and bob.closed
    assert alice.close_code == 1000
    assert repr(alice) == "<Client 'alice' closed>"
    alice.close()  # closing twice is fine


def test_the_async_face_aconnect(server):
    async def main() -> None:
        alice = await rtlab.aconnect(server, "alice")
        bob = await rtlab.aconnect(server.url, "bob")  # a URL works too
        assert isinstance(alice, EventClient)
        async with alice, bob:
            await alice.emit("join-room", "lobby", ack=True)
            await bob.emit("join-room", "lobby", ack=True)
            await bob.emit("send-message", {"roomId": "lobby", "message": "hey"}, ack=True)
            [message] = await alice.wait_for("receive-message")
            assert message["userId"] == "bob"
        assert alice.closed and bob.closed

    run(main())


# -- property: random join / leave / send sequences over real sockets ----------------------

_examples = itertools.count()
operations = st.lists(
    st.tuples(st.sampled_from(["join", "leave", "send"]), st.integers(0, 2), st.integers(0, 1)),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(operations)
def test_random_sequences_deliver_exactly_to_members_once_in_order(server, ops):
    """Each operation is acknowledged before the next, so the server's writes happen
    in the order of the operations, and every client's stream must equal the
    model's: no event to a non-member, each to each member exactly once, in order."""
    n = next(_examples)
    users = [f"p{n}u{i}" for i in range(3)]
    rooms = [f"p{n}r{j}" for j in range(2)]

    async def main() -> None:
        clients = [await connect(server, u) for u in users]
        model: dict[str, set[str]] = {room: set() for room in rooms}
        expected: dict[str, list[tuple[str, ...]]] = {u: [] for u in users}
        sent = collections.Counter[str]()
        seqs = collections.Counter[str]()  # the room's last message number
        for what, i, j in ops:
            user, room, client = users[i], rooms[j], clients[i]
            if what == "join":
                reply = await client.emit("join-room", room, ack=True)
                if user not in model[room]:
                    for other in model[room]:
                        expected[other].append(("user-joined", user, room))
                        expected[other].append(("presence", user, room))
                    model[room].add(user)
                assert builtin(reply) == {
                    "roomId": room,
                    "members": sorted(model[room]),
                    "seq": seqs[room],
                }
            elif what == "leave":
                await client.emit("leave-room", room, ack=True)
                if user in model[room]:
                    model[room].discard(user)
                    for other in model[room]:
                        expected[other].append(("user-left", user, room))
                        expected[other].append(("presence", user, room))
            else:
                text = f"{user}#{sent[user]}"
                sent[user] += 1
                data = {"roomId": room, "message": text}
                if user in model[room]:
                    reply = await client.emit("send-message", data, ack=True)
                    seqs[room] += 1
                    delivered = len(model[room])
                    assert reply == {"roomId": room, "seq": seqs[room], "delivered": delivered}
                    for member in model[room]:
                        expected[member].append(("receive-message", user, room, text, seqs[room]))
                else:
                    with pytest.raises(AckError) as caught:
                        await client.emit("send-message", data, ack=True)
                    assert caught.value.code == "not_member"
        for client in clients:
            await usable(client)
        for user, client in zip(users, clients, strict=True):
            got = []
            for event in client.events():
                fields = (event.event, event.data["userId"], event.data["roomId"])
                if event.event == "receive-message":
                    fields += (event.data["message"], event.data["seq"])
                got.append(fields)
            assert got == expected[user]
        namespace = server.server.namespace("/")
        for room in rooms:
            assert await on_server(server, members, namespace, room) == sorted(model[room])
        await close_all(*clients)

    run(main())


def test_a_user_with_two_connections_joins_and_leaves_a_room_once(server):
    """A notebook and a browser tab of the same user: presence is per user."""
    with rtlab.connect(server, "alice") as alice, rtlab.connect(server, "bob") as notebook:
        alice.emit("join-room", "lobby", ack=True)
        notebook.emit("join-room", "lobby", ack=True)
        with rtlab.connect(server, "bob") as tab:
            answer = tab.emit("join-room", "lobby", ack=True)
            assert answer["members"] == ["alice", "bob"]
            notebook.emit("leave-room", "lobby", ack=True)  # the tab is still there
            alice.emit("broadcast", "checkpoint", ack=True)
            alice.wait_for("broadcast-message")
            assert [e.data["userId"] for e in alice.events("user-joined")] == ["bob"]
            assert alice.events("user-left") == []
        alice.wait_for("user-left")  # the tab closed: now bob has left
        assert [e.data for e in alice.events("user-left")] == [{"userId": "bob", "roomId": "lobby"}]
