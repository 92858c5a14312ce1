"""Rate limits, refusals that add up, room limits and access rules, over real sockets."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import rtlab
from rtlab import AckError
from rtlab.core.ratelimit import SlidingWindow, TokenBucket
from rtlab.core.tokens import issue


def test_the_tutorials_ten_a_minute_per_user_across_connections():
    server = rtlab.start_server(rate_limit=SlidingWindow(10, 60))
    with (
        server,
        rtlab.connect(server, "alice") as notebook,
        rtlab.connect(server, "alice") as tab,
        rtlab.connect(server, "bob") as bob,
    ):
        for client in (notebook, tab, bob):
            client.emit("join-room", "lobby", ack=True)
        # Alice: 2 joins + 5 + 3 messages = 10 events, across her two connections.
        for i in range(5):
            notebook.emit("send-message", {"roomId": "lobby", "message": f"n{i}"}, ack=True)
        for i in range(3):
            tab.emit("send-message", {"roomId": "lobby", "message": f"t{i}"}, ack=True)
        with pytest.raises(AckError) as caught:
            tab.emit("send-message", {"roomId": "lobby", "message": "one too many"}, ack=True)
        assert caught.value.code == "rate_limited"
        assert caught.value.message.startswith("slow down: try again in ")
        # Bob is unaffected, and so is the heartbeat.
        assert bob.emit("send-message", {"roomId": "lobby", "message": "hi"}, ack=True)
        assert notebook.emit("heartbeat", ack=True)["time"]
        got = [m["message"] for m in bob.wait_for("receive-message", 9)]
        assert got == ["n0", "n1", "n2", "n3", "n4", "t0", "t1", "t2", "hi"]


def test_a_refused_event_without_id_gets_an_error_event_with_retry_after():
    with (
        rtlab.start_server(rate_limit=TokenBucket(rate=1, burst=1)) as server,
        connect(f"{server.url}/ws?user=alice") as ws,
    ):
        ws.send('{"event": "broadcast", "data": "first"}')
        ws.send('{"event": "broadcast", "data": "second"}')
        answers = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
        assert answers[0]["event"] == "broadcast-message"
        error = answers[1]["data"]
        assert error["code"] == "rate_limited"
        assert 0 < error["retryAfter"] <= 1


def test_a_join_that_replays_a_whole_history_costs_the_rate_limit_more_than_one_event():
    """Ten events a second each replaying a room's 1,000 messages would make one student
    cost the server megabytes a second; a replay costs an event per 100 messages."""
    server = rtlab.start_server(rate_limit=TokenBucket(rate=1, burst=30))
    with server, rtlab.connect(server, "mallory") as mallory:
        history = server.server.app.history
        server.call(
            lambda: [
                history.append("/", "big", {"roomId": "big", "message": f"m{i}"}, time.time())
                for i in range(1000)
            ]
        )
        replayed = []
        with pytest.raises(AckError) as refused:
            for _ in range(30):
                ack = mallory.emit("join-room", {"roomId": "big", "since": 0}, ack=True)
                replayed.append(ack["replayed"])
        assert refused.value.code == "rate_limited"
        assert replayed == [1000] * 3  # 11 events each, 33 of a burst of 30: not 30 joins


def test_sustained_abuse_closes_with_1008_and_others_are_unaffected():
    server = rtlab.start_server(rate_limit=TokenBucket(rate=1, burst=2))
    with (
        server,
        rtlab.connect(server, "bob") as bob,
        connect(f"{server.url}/ws?user=mallory") as ws,
    ):
        bob.emit("join-room", "lobby", ack=True)
        for i in range(60):
            try:
                ws.send(f'{{"event": "broadcast", "data": "spam {i}"}}')
            except ConnectionClosed:
                break
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=5)
        assert ws.close_code == 1008
        assert "too many refused messages" in ws.close_reason
        assert bob.emit("send-message", {"roomId": "lobby", "message": "fine"}, ack=True)
        assert server.call(lambda: server.server.events.dropped_abusive) == 1


def test_malformed_input_alone_also_adds_up_to_a_close():
    with rtlab.start_server() as server, connect(f"{server.url}/ws?user=mallory") as ws:
        codes = []
        with pytest.raises(ConnectionClosed):
            for _ in range(100):
                ws.send("{not json")
                codes.append(ws.recv(timeout=5))
        assert ws.close_code == 1008
        assert 25 <= len(codes) <= 31  # every bad input was answered until the close
        assert all('"code":"invalid_json"' in c for c in codes)


def test_rooms_per_connection_are_limited():
    with rtlab.start_server(max_rooms=3) as server, rtlab.connect(server, "alice") as alice:
        for room in ("a", "b", "c"):
            alice.emit("join-room", room, ack=True)
        alice.emit("join-room", "a", ack=True)  # again: not a new room
        with pytest.raises(AckError) as caught:
            alice.emit("join-room", "d", ack=True)
        assert caught.value.code == "limit_exceeded"
        alice.emit("leave-room", "a", ack=True)
        assert alice.emit("join-room", "d", ack=True)["roomId"] == "d"


def test_an_access_rule_guards_a_namespace():
    with rtlab.start_server() as server:
        admin = server.call(lambda: server.server.namespace("/admin"))
        server.call(setattr, admin, "authorize", lambda session: session.user == "teacher")
        with rtlab.connect(server, "teacher") as teacher, rtlab.connect(server, "pupil") as pupil:
            assert teacher.emit("join-room", "staff", ns="/admin", ack=True)["roomId"] == "staff"
            with pytest.raises(AckError) as caught:
                pupil.emit("join-room", "staff", ns="/admin", ack=True)
            assert caught.value.code == "forbidden"
            assert caught.value.message == "pupil may not connect to '/admin'"


def test_rtlab_serve_rate_limit_option_is_checked():
    result = subprocess.run(
        [sys.executable, "-m", "rtlab.cli", "serve", "--rate-limit", "fast"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "rtlab serve: error: argument --rate-limit: must be RATE/BURST" in result.stderr
    assert "e.g. 10/50, or off; got 'fast'" in result.stderr


def test_a_users_echoes_count_against_their_rate_limit_and_wait_past_it():
    """On a class's server /echo costs the user's events: a student cannot make the
    server inflate and deflate echoes faster than they may chat. Past the limit the echo
    waits, reading nothing (nothing lost, nothing refused)."""
    secret = "s" * 32
    limit = TokenBucket(rate=0.01, burst=3)  # 3 at once, then one per 100 s
    with rtlab.start_server(secret=secret, rate_limit=limit) as server:
        token = issue(secret, "mallory", 3600, time.time())
        with connect(f"{server.url}/echo?token={token}") as echo:
            for i in range(3):
                echo.send(f"m{i}")
                assert echo.recv(timeout=10) == f"Echo: m{i}"
            echo.send("one too many")
            with pytest.raises(TimeoutError):
                echo.recv(timeout=0.5)  # it waits for the bucket, about 100 s
            with rtlab.connect(server, "mallory", token=token) as chat:
                with pytest.raises(AckError) as caught:  # the same bucket
                    chat.emit("join-room", "lobby", ack=True)
                assert caught.value.code == "rate_limited"
        other = issue(secret, "ann", 3600, time.time())
        with connect(f"{server.url}/echo?token={other}") as echo:  # a bucket of her own
            echo.send("hi")
            assert echo.recv(timeout=10) == "Echo: hi"
