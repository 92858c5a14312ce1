"""Fuzz every event: whatever a client sends on ``/ws``, never ``internal``, never stuck.

Hypothesis writes envelopes for every event the lab server handles (join-room,
leave-room, send-message, typing, direct-message, broadcast, heartbeat, connect,
disconnect, and names it does not know), well-formed and not: wrong types, huge
numbers, NaN and Infinity, lone surrogates, nested objects, empty and huge strings,
unknown fields, bad ids, namespaces and mids, text that is not JSON, and binary frames,
well-formed or not. They go over a real connection to a real lab server, once in one
process and once on a real redis-server. Every answer must be an acknowledgement, an
event, or an error whose code is not ``internal``; the server logs no error; the
connection stays usable (or is closed with 1008 for too many refusals, and the next
example connects again); and at the end a bystander's round trip still works.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

import rtlab
from rtlab.core.attachments import pack
from rtlab.core.envelope import MAX_ID
from tests.e2e.redis_server import RedisServer

EXAMPLES = 1500  # per server: about 10 to 30 s each on a shared 2-core machine
SENTINEL = MAX_ID  # the id of the heartbeat that follows each example (fuzzed ids are lower)
WAIT = 10.0  # seconds: a hang guard for one answer, never a speed requirement
EVENTS = [
    "join-room",
    "leave-room",
    "send-message",
    "typing",
    "direct-message",
    "broadcast",
    "heartbeat",
    "connect",
    "disconnect",
]
NAMESPACES = ["/", "/chat", "/notifications"]

# -- what a client may put in a message ------------------------------------------------------

odd_text = st.sampled_from(
    ["", " ", "\ud800", "x\udfffy", "\udc00\ud800", "\x00", "\u2028", "💥", "lobby\n", "x" * 501]
)
texts = st.one_of(st.text(max_size=40), odd_text, st.just("y" * 70_000))
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**53, 2**63, 10**400, 1e308]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
rooms = st.one_of(
    st.sampled_from(["lobby", "kitchen", "a" * 64, "a" * 65, "-x", "lob by", "lobby\ud800"]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True),
    json_values,
)
users = st.one_of(st.sampled_from(["bob", "fuzzer", "nobody", "b\ud800", ""]), json_values)


def with_extra(fields: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """An object of ``fields``' strategies, each sometimes left out, sometimes with more."""
    return st.fixed_dictionaries({}, optional={**fields, "extra": json_values, "\ud800": scalars})


good_rooms = st.one_of(
    st.sampled_from(["lobby", "kitchen"]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True),
)
# Accepted as they are: lone surrogates included (delivered escaped, as JSON writes them).
good_texts = st.one_of(
    st.text(min_size=1, max_size=40).filter(str.strip), odd_text.filter(str.strip)
)
good_texts = good_texts.filter(lambda text: len(text) <= 500)
WELL_FORMED: dict[str, st.SearchStrategy[Any]] = {
    "join-room": good_rooms
    | st.fixed_dictionaries({"roomId": good_rooms}, optional={"since": st.integers(0, 99)}),
    "leave-room": good_rooms,
    "send-message": st.fixed_dictionaries({"roomId": good_rooms, "message": good_texts}),
    "typing": st.fixed_dictionaries({"roomId": good_rooms, "typing": st.booleans()}),
    "direct-message": st.fixed_dictionaries(
        {"to": st.sampled_from(["bob", "nobody", "fuzzer"]), "message": good_texts}
    ),
    "broadcast": good_texts,
    "heartbeat": json_values,
    "connect": st.none(),
    "disconnect": st.none(),
}
ILL_FORMED: dict[str, st.SearchStrategy[Any]] = {
    "join-room": rooms | with_extra({"roomId": rooms, "since": numbers | json_values}),
    "leave-room": rooms,
    "send-message": with_extra({"roomId": rooms, "message": texts | json_values}),
    "typing": with_extra({"roomId": rooms, "typing": st.booleans() | json_values}),
    "direct-message": with_extra({"to": users, "message": texts | json_values}),
    "broadcast": texts | json_values,
    "heartbeat": json_values,
    "connect": json_values,
    "disconnect": json_values,
}

good_ids = st.integers(min_value=0, max_value=SENTINEL - 1)
bad_ids = st.sampled_from([-1, 2**53, 1.5, True, "7", math.nan, None])
bad_namespaces = st.one_of(st.sampled_from(["/nope", "", "chat", "/" + "n" * 64]), texts)
good_mids = st.from_regex(r"[\x21-\x7e]{1,64}", fullmatch=True)


def mostly(draw: st.DrawFn, good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """Four times in five what the server takes, else what it must refuse."""
    return draw(bad if draw(st.integers(0, 4)) == 4 else good)  # hypothesis favours 0


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """An envelope for one event, mostly well-formed so that handlers run; its fields
    sometimes missing, wrong or extra."""
    name = mostly(draw, st.sampled_from(EVENTS), st.text(max_size=70) | json_values)
    known = isinstance(name, str) and name in WELL_FORMED
    message: dict[str, Any] = {"event": name}
    if draw(st.integers(0, 9)) < 9:
        good = WELL_FORMED[name] if known else json_values
        message["data"] = mostly(draw, good, ILL_FORMED[name] if known else json_values)
    if draw(st.booleans()):
        message["ns"] = mostly(draw, st.sampled_from(NAMESPACES), bad_namespaces)
    if draw(st.integers(0, 9)) < 9:
        message["id"] = mostly(draw, good_ids, bad_ids)
    if draw(st.integers(0, 2)) == 2:
        message["mid"] = mostly(draw, good_mids, texts | json_values)
    if draw(st.integers(0, 19)) == 19:
        message["extra"] = draw(json_values)
    return message


def to_json(message: Any) -> str:
    """As a client writes it: surrogates escaped, NaN and Infinity as Python writes them."""
    return json.dumps(message, allow_nan=True)


def binary_frame(message: dict[str, Any], payload: bytes, damage: int) -> bytes:
    """``message`` with bytes in its data, as a binary frame; damaged in one of a few ways."""
    frame = pack({**message, "data": {"roomId": "lobby", "message": payload, "raw": [payload]}})
    if damage == 1:
        return frame[:3]
    if damage == 2:
        return struct.pack(">I", 10**6) + frame[4:]
    if damage == 3:
        return frame + b"tail"
    return frame


specials = st.sampled_from(
    [
        "[" * 100_000 + "]" * 100_000,  # nested deeper than any parser goes
        '{"event":"heartbeat","event":"join-room","data":"lobby","id":1}',
        '{"event":"send-message","data":{"roomId":"lobby","message":"\\ud800"},"id":1}',
        '{"event":"heartbeat","id":1e400}',
        '{"event":"heartbeat","id":-0}',
    ]
)
not_envelopes = st.one_of(
    json_values.map(to_json),  # JSON, but not an object
    st.text(max_size=60),  # mostly not JSON at all
    st.binary(max_size=60),  # a binary frame of nothing in particular
    specials,
)


@st.composite
def frames(draw: st.DrawFn) -> str | bytes:
    """Mostly an envelope as JSON text; else one in a binary frame (perhaps damaged), or
    something that is no envelope at all."""
    pick = draw(st.integers(0, 9))
    if pick < 7:
        return to_json(draw(envelopes()))
    if pick < 9:
        return binary_frame(
            draw(envelopes()), draw(st.binary(max_size=64)), draw(st.integers(0, 3))
        )
    return draw(not_envelopes)


# -- the servers and the client -------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture(params=["in one process", "on Redis"])
def lab(request: pytest.FixtureRequest) -> Iterator[rtlab.RunningServer]:
    options = {"redis": request.getfixturevalue("redis_url")} if request.param == "on Redis" else {}
    with rtlab.start_server(**options) as server:
        yield server


class Fuzzer:
    """One client sending what hypothesis writes; connects again after a 1008 close."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection: ClientConnection | None = None
        self.open_connections = contextlib.ExitStack()
        self.reconnects = 0

    def open(self) -> ClientConnection:
        if self.connection is None:
            url = f"{self.url}/ws?user=fuzzer"
            self.connection = self.open_connections.enter_context(connect(url, open_timeout=WAIT))
            for text in (  # somewhere for the events to do something
                '{"event":"join-room","data":"lobby"}',
                '{"event":"connect","ns":"/chat"}',
                '{"event":"join-room","data":"lobby","ns":"/chat"}',
            ):
                self.connection.send(text)
        return self.connection

    def answers(self, frame: str | bytes) -> list[Any]:
        """What the server sends back for ``frame``, up to the sentinel heartbeat's ack."""
        connection = self.open()
        try:
            connection.send(frame)
            connection.send(json.dumps({"event": "heartbeat", "id": SENTINEL}))
            got = []
            while True:
                reply = connection.recv(timeout=WAIT)
                if isinstance(reply, bytes):  # an event with attachments: not ours to read
                    continue
                message = json.loads(reply)
                if message.get("ack") == SENTINEL:
                    assert "time" in message["data"], message
                    return got
                got.append(message)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1008, closed
            assert "too many refused" in closed.rcvd.reason, closed.rcvd.reason
            self.connection = None
            self.reconnects += 1
            return []


def error_code(message: dict[str, Any]) -> str | None:
    if "ack" in message:
        error = message.get("error")
        return error["code"] if error is not None else None
    if message.get("event") == "error":
        return message["data"]["code"]
    return None


def round_trip(url: str, user: str) -> None:
    """A bystander still gets answered, and gets what is sent to its room."""
    with connect(f"{url}/ws?user={user}", open_timeout=WAIT) as bystander:
        bystander.send('{"event":"join-room","data":"quiet","id":1}')
        with connect(f"{url}/ws?user={user}-friend", open_timeout=WAIT) as friend:
            friend.send('{"event":"join-room","data":"quiet","id":1}')
            assert json.loads(friend.recv(timeout=WAIT))["ack"] == 1
            message = '{"event":"send-message","data":{"roomId":"quiet","message":"still here"}}'
            friend.send(message)
            while True:
                got = json.loads(bystander.recv(timeout=WAIT))
                if got.get("event") == "receive-message":
                    assert got["data"]["message"] == "still here"
                    return


def test_no_event_gets_internal_and_the_server_keeps_serving(lab):
    fuzzer = Fuzzer(lab.url)
    # A DM's recipient, reading all along (max_queue=None), so it answers pings however long.
    with connect(f"{lab.url}/ws?user=bob", open_timeout=WAIT, max_queue=None) as bob:
        bob.send('{"event":"join-room","data":"lobby","id":1}')
        assert json.loads(bob.recv(timeout=WAIT))["ack"] == 1

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(frames())
        def nothing_internal(frame: str | bytes) -> None:
            for answer in fuzzer.answers(frame):
                assert error_code(answer) != "internal", (frame[:200], answer)

        with fuzzer.open_connections:
            nothing_internal()
        round_trip(lab.url, "bystander")
        bob.send('{"event":"heartbeat","id":2}')
        while json.loads(bob.recv(timeout=WAIT)).get("ack") != 2:
            pass  # what the fuzzer sent to lobby, then bob's own answer
    failures = [line for line in lab.server.log if "ERROR" in line]
    assert not failures, failures[:3]


def test_a_lone_surrogate_is_delivered_intact(lab):
    """Valid JSON (``"\\ud800"``) that has no UTF-8 form: escaped on the way, never lost."""
    odd = "x\ud800y\udfff"
    room = f"odd-{secrets.token_hex(4)}"  # a room of its own: Redis outlives one test
    join = to_json({"event": "join-room", "data": room, "id": 1})

    def next_event(connection: ClientConnection, name: str) -> Any:
        while (message := json.loads(connection.recv(timeout=WAIT))).get("event") != name:
            pass
        return message["data"]

    with (
        connect(f"{lab.url}/ws?user=alice", open_timeout=WAIT) as alice,
        connect(f"{lab.url}/ws?user=bob", open_timeout=WAIT) as bob,
    ):
        for client in (alice, bob):
            client.send(join)
            assert "error" not in json.loads(client.recv(timeout=WAIT))
        alice.send(to_json({"event": "send-message", "data": {"roomId": room, "message": odd}}))
        assert next_event(bob, "receive-message")["message"] == odd
        alice.send(to_json({"event": "direct-message", "data": {"to": "bob", "message": odd}}))
        assert next_event(bob, "direct-message")["message"] == odd
        with connect(f"{lab.url}/ws?user=carol", open_timeout=WAIT) as carol:
            carol.send(join)
            history = json.loads(carol.recv(timeout=WAIT))["data"]["history"]
            assert [m["message"] for m in history] == [odd]
