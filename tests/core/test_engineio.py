"""rtlab.core.engineio reads Engine.IO and Socket.IO packets as python-socketio writes them."""

from __future__ import annotations

import engineio.packet as ep
import pytest
import socketio.packet as sp

from rtlab.core.engineio import PacketError, describe, parse, split


def on_the_wire(packet: sp.Packet) -> str:
    """A Socket.IO packet inside an Engine.IO message, encoded by python-socketio itself."""
    return ep.Packet(ep.MESSAGE, data=packet.encode()).encode()


@pytest.mark.parametrize(
    ("packet", "socket", "ns", "ack_id", "data"),
    [
        (sp.Packet(sp.CONNECT), "connect", "/", None, None),
        (sp.Packet(sp.CONNECT, namespace="/chat"), "connect", "/chat", None, None),
        (
            sp.Packet(sp.EVENT, data=["join-room", "lobby"]),
            "event",
            "/",
            None,
            ["join-room", "lobby"],
        ),
        (sp.Packet(sp.EVENT, data=["join-room", "x"], id=12), "event", "/", 12, ["join-room", "x"]),
        (
            sp.Packet(sp.EVENT, data=["a", {"b": 1}], id=3, namespace="/chat"),
            "event",
            "/chat",
            3,
            ["a", {"b": 1}],
        ),
        (sp.Packet(sp.ACK, data=[{"roomId": "lobby"}], id=1), "ack", "/", 1, [{"roomId": "lobby"}]),
        (sp.Packet(sp.DISCONNECT), "disconnect", "/", None, None),
        (
            sp.Packet(sp.CONNECT_ERROR, data={"message": "no"}),
            "connect_error",
            "/",
            None,
            {"message": "no"},
        ),
    ],
)
def test_socketio_packets_written_by_python_socketio_parse_back(packet, socket, ns, ack_id, data):
    parsed = parse(on_the_wire(packet))
    assert (parsed.engine, parsed.socket, parsed.ns, parsed.ack_id, parsed.data) == (
        "message",
        socket,
        ns,
        ack_id,
        data,
    )


@pytest.mark.parametrize(
    ("packet", "meaning"),
    [
        (ep.Packet(ep.OPEN, {"sid": "abc", "upgrades": ["websocket"]}), "open"),
        (ep.Packet(ep.PING), "ping"),
        (ep.Packet(ep.PONG), "pong"),
        (ep.Packet(ep.PING, data="probe"), "ping probe"),
        (ep.Packet(ep.PONG, data="probe"), "pong probe"),
        (ep.Packet(ep.UPGRADE), "upgrade"),
        (ep.Packet(ep.NOOP), "noop"),
        (ep.Packet(ep.CLOSE), "close"),
    ],
)
def test_engineio_packets_are_named(packet, meaning):
    assert parse(packet.encode()).meaning == meaning


def test_an_event_and_its_ack_describe_what_they_do():
    assert (
        describe('421["join-room","lobby"]') == 'event join-room (ack 1): 421["join-room","lobby"]'
    )
    assert describe('431[{"roomId":"lobby"}]') == 'ack 1: 431[{"roomId":"lobby"}]'
    assert describe('42/chat,["hi"]') == 'event hi in /chat: 42/chat,["hi"]'
    assert describe("40") == "connect /: 40"
    assert describe(b"2") == "ping: 2"


def test_a_long_polling_body_is_split_into_its_packets():
    body = '40{"sid":"x"}\x1e42["user-joined","y"]'
    assert split(body) == ['40{"sid":"x"}', '42["user-joined","y"]']
    assert describe(body) == 'connect /: 40{"sid":"x"} ␞ event user-joined: 42["user-joined","y"]'


def test_long_packets_are_shortened_and_other_payloads_shown_as_they_are():
    long = '42["send-message",{"message":"' + "x" * 100 + '"}]'
    assert describe(long, width=30) == "event send-message: " + long[:29] + "…"
    assert describe("ok") == "ok"  # the answer to a long-polling POST
    assert describe(b"\xff\x00\x01") == "<3 bytes, binary attachment>"


@pytest.mark.parametrize("text", ["", "9", "hello", '42["a"'])
def test_what_is_not_a_packet_is_refused(text):
    with pytest.raises(PacketError):
        parse(text)
