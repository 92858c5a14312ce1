"""The tutorial's Socket.IO chat server on python-socketio, with python-socketio's own client:
rooms, the tutorial's events, the upgrade to WebSocket, and long-polling when a proxy refuses it."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
import socketio

import rtlab
from rtlab.aio.socketio_chat import ClientMissing, client_bundle
from rtlab.notebook.socketio_lab import RunningSocketIO


@pytest.fixture
def chat() -> Iterator[RunningSocketIO]:
    with rtlab.start_socketio() as running:
        yield running


@pytest.fixture
def clients() -> Iterator[list[socketio.Client]]:
    made: list[socketio.Client] = []
    yield made
    for client in made:
        client.disconnect()


def client(clients: list[socketio.Client], url: str, **options: object) -> socketio.Client:
    made = socketio.Client(reconnection=False)
    made.received = []  # type: ignore[attr-defined]
    for event in ("user-joined", "receive-message", "broadcast-message"):
        made.on(event, lambda data, event=event: made.received.append((event, data)))
    made.connect(url, wait_timeout=10, **options)
    clients.append(made)
    return made


def wait_for(what, condition) -> None:
    rtlab.wait_until(condition, timeout=10, what=what)


def test_the_tutorials_events_reach_the_room_and_everyone(chat, clients):
    alice, bob, carol = (client(clients, chat.url) for _ in range(3))
    assert alice.call("join-room", "lobby", timeout=10) == {"roomId": "lobby"}
    bob.call("join-room", "lobby", timeout=10)
    carol.call("join-room", "kitchen", timeout=10)
    wait_for("alice hears bob join", lambda: alice.received)
    assert alice.received == [("user-joined", bob.get_sid())]
    alice.emit("send-message", {"roomId": "lobby", "message": "hi"})
    wait_for("bob gets the message", lambda: len(bob.received) == 1)
    event, data = bob.received[0]
    assert (event, data["userId"], data["message"]) == ("receive-message", alice.get_sid(), "hi")
    assert data["timestamp"].endswith("Z")
    carol.emit("broadcast", {"text": "lunch"})
    wait_for("everyone gets the broadcast", lambda: len(alice.received) == 3)
    assert alice.received[-1] == ("broadcast-message", {"text": "lunch"})  # data as sent
    assert not [e for e, _ in carol.received if e == "receive-message"]
    assert sorted(chat.members("lobby")) == sorted([alice.get_sid(), bob.get_sid()])


def test_a_client_upgrades_to_websocket_unless_the_proxy_refuses(chat, clients):
    with rtlab.start_proxy(chat.url.replace("http", "ws")) as proxy:
        through = proxy.http_url.rstrip("/")
        assert client(clients, through).transport() == "websocket"
        proxy.faults(refuse_upgrades=True)
        polling = client(clients, through)
        assert polling.transport() == "polling"
        assert proxy.proxy.refused == 1
        other = client(clients, chat.url)
        polling.call("join-room", "lobby", timeout=10)
        other.call("join-room", "lobby", timeout=10)
        other.emit("send-message", {"roomId": "lobby", "message": "by long-polling"})
        wait_for("the polling client gets it", lambda: len(polling.received) == 2)
        assert polling.received[0] == ("user-joined", other.get_sid())
        assert polling.received[1][1]["message"] == "by long-polling"
    assert chat.requests["polling POST"] >= 2  # join-room and the connect, at least


def test_the_page_and_the_browser_client_are_served(chat):
    with urllib.request.urlopen(chat.http_url, timeout=10) as page:
        assert b'<script src="socket.io.min.js">' in page.read()
    try:
        client_bundle()
    except ClientMissing as missing:
        pytest.skip(str(missing))
    with urllib.request.urlopen(chat.url + "/socket.io.min.js", timeout=10) as bundle:
        assert bundle.read().startswith(b"/*!\n * Socket.IO v4.8.4")


def test_numbered_ids_make_a_lessons_output_the_same_on_every_run(clients):
    with rtlab.start_socketio(numbered_ids=True) as chat:
        first = client(clients, chat.url)
        assert (first.eio.sid, first.get_sid()) == ("s1", "s2")  # Engine.IO's, then the socket's
        assert first.call("join-room", "lobby", timeout=10) == {"roomId": "lobby"}
        assert chat.members("lobby") == ["s2"]
        assert chat.sessions == 1
        first.disconnect()
        rtlab.wait_until(lambda: chat.sessions == 0, timeout=10, what="the session to close")
