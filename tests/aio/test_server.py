"""The lab server over real sockets: page, echo, feed, errors, stopping."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

import rtlab
from rtlab.aio.server import LabServer


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_binds_loopback_on_a_free_port(server):
    assert server.host == "127.0.0.1"
    assert server.port > 0
    assert server.url == f"ws://127.0.0.1:{server.port}"
    assert server.echo_url == f"ws://127.0.0.1:{server.port}/echo"


def test_echo_text_and_binary_like_the_tutorials_node_server(server):
    with connect(server.echo_url) as ws:
        for text in ["hello", "", "héllo wörld ✓", "x" * 70_000]:
            ws.send(text)
            assert ws.recv(timeout=5) == f"Echo: {text}"
        for data in [b"\x00\x01\xff", b"", bytes(range(256)) * 300]:
            ws.send(data)
            assert ws.recv(timeout=5) == data


def test_page_is_served_and_uses_the_native_api(server):
    status, content_type, body = fetch(server.http_url)
    assert status == 200
    assert content_type == "text/html; charset=utf-8"
    page = body.decode()
    assert "new WebSocket(" in page
    for event in ("open", "message", "error", "close"):
        assert f'addEventListener("{event}"' in page


def test_unknown_paths_get_404_and_echo_over_http_gets_426(server):
    assert fetch(server.http_url + "nowhere")[0] == 404
    assert fetch(server.http_url + "echo")[0] == 426
    with pytest.raises(InvalidStatus) as caught:
        connect(f"{server.url}/nowhere")
    assert caught.value.response.status_code == 404


def test_feed_pushes_and_answers_polls(server):
    with connect(server.feed_url) as ws:
        rtlab.wait_until(lambda: len(server.clients) == 1, what="the subscriber")
        first = server.publish("one")
        second = server.publish("two")
        pushed = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
    assert [u["text"] for u in pushed] == ["one", "two"]
    assert [u["seq"] for u in pushed] == [first.seq, second.seq]
    status, content_type, body = fetch(f"{server.http_url}feed?after={first.seq}")
    assert (status, content_type) == (200, "application/json")
    assert [u["text"] for u in json.loads(body)] == ["two"]
    status, _, body = fetch(f"{server.http_url}feed?after=soon")
    assert status == 400
    assert "whole number" in json.loads(body)["error"]


def test_clients_are_tracked_live(server):
    assert server.clients == []
    with connect(server.echo_url), connect(server.feed_url):
        rtlab.wait_until(lambda: len(server.clients) == 2, what="two clients")
        assert [c.path for c in server.clients] == ["/echo", "/feed"]
        assert all(c.remote.startswith("127.0.0.1:") for c in server.clients)
        assert "2 clients" in repr(server)
    rtlab.wait_until(lambda: server.clients == [], what="clients to leave")


def test_oversized_message_closes_1009_and_server_keeps_serving():
    with rtlab.start_server(max_size=1024) as server:
        with connect(server.echo_url) as ws:
            ws.send("x" * 2048)
            with pytest.raises(Exception) as caught:
                ws.recv(timeout=5)
            assert ws.close_code == 1009
        assert "close" in type(caught.value).__name__.lower()
        with connect(server.echo_url) as ws:
            ws.send("still here")
            assert ws.recv(timeout=5) == "Echo: still here"


def test_stop_closes_clients_with_1001_frees_port_and_thread():
    before = threading.active_count()
    server = rtlab.start_server()
    port = server.port
    with connect(server.echo_url) as ws:
        server.stop()
        with pytest.raises(ConnectionClosedOK):
            ws.recv(timeout=5)
        assert ws.close_code == 1001
    assert not server.running
    assert repr(server) == "<RunningServer stopped>"
    server.stop()  # stopping twice is fine
    with rtlab.start_server(port=port) as again:  # the port is free again
        assert again.port == port
    rtlab.wait_until(lambda: threading.active_count() <= before, what="the thread to end")


def test_several_servers_at_once():
    with rtlab.start_server() as a, rtlab.start_server() as b:
        assert a.port != b.port
        for server in (a, b):
            with connect(server.echo_url) as ws:
                ws.send(str(server.port))
                assert ws.recv(timeout=5) == f"Echo: {server.port}"


def test_async_client_from_a_running_loop(server):
    async def main() -> list[str]:
        async with aconnect(server.echo_url) as ws:
            await ws.send("a")
            await ws.send("b")
            return [await ws.recv(), await ws.recv()]

    assert asyncio.run(main()) == ["Echo: a", "Echo: b"]


def test_run_works_inside_a_running_loop(server):
    """rtlab.run() is for synchronous code in a cell, where a loop already runs."""

    async def ask() -> str:
        async with aconnect(server.echo_url) as ws:
            await ws.send("nested")
            return await ws.recv()

    async def cell() -> str:
        asyncio.get_running_loop()  # a loop runs here, as in a notebook cell
        return rtlab.run(ask())

    assert rtlab.run(ask()) == "Echo: nested"  # no loop running: plain asyncio.run
    assert asyncio.run(cell()) == "Echo: nested"


def test_nothing_is_printed_from_the_background(capfd):
    with rtlab.start_server() as server:
        with connect(server.echo_url) as ws:
            ws.send("x" * 10)
            ws.recv(timeout=5)
        with pytest.raises(InvalidStatus):
            connect(f"{server.url}/nowhere")
        with socket.create_connection((server.host, server.port)) as raw:
            raw.sendall(b"GARBAGE\r\n\r\n")  # not HTTP at all
            raw.recv(1024)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert any("connection" in line for line in server.log)


def test_garbage_handshake_is_refused_and_others_still_served(server):
    with socket.create_connection((server.host, server.port)) as raw:
        raw.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\r\n")
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 426 Upgrade Required")
    assert b"missing Connection header" in answer
    with connect(server.echo_url) as ws:
        ws.send("ok")
        assert ws.recv(timeout=5) == "Echo: ok"


def test_start_twice_is_an_error():
    async def main() -> None:
        async with LabServer() as server:
            with pytest.raises(RuntimeError, match="already started"):
                await server.start()

    asyncio.run(main())


def test_stop_from_a_cell_while_a_client_on_the_cells_loop_is_connected():
    """As in a notebook: the client lives on the kernel's loop, stop() is a plain call."""
    server = rtlab.start_server()

    async def cell() -> int | None:
        async with aconnect(server.echo_url) as ws:
            # This blocks the thread, yet its loop must answer the closing handshake;
            # if it could not, stop() would raise TimeoutError.
            server.stop()
            with pytest.raises(ConnectionClosedOK):
                await ws.recv()
            return ws.close_code

    assert asyncio.run(cell()) == 1001
    assert not server.running


def upgraded_echo(server: Any) -> socket.socket:
    """A raw socket upgraded on ``/echo``, its 101 read (use it in ``with``)."""
    raw = socket.create_connection((server.host, server.port))
    raw.sendall(
        b"GET /echo HTTP/1.1\r\nHost: [::1]\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert raw.recv(4096).startswith(b"HTTP/1.1 101")
    return raw


def test_a_dropped_client_is_not_logged_as_a_server_error(server):
    upgraded_echo(server).close()  # gone without a close frame
    rtlab.wait_until(
        lambda: any(re.match(r"INFO closed #\d+ /echo: 1006", line) for line in server.log),
        what="the log to say the client left without a close frame",
    )
    assert server.clients == []
    assert not [line for line in server.log if line.startswith("ERROR")]


@pytest.mark.slow
def test_stop_does_not_wait_for_a_client_that_never_answers_the_close():
    """A raw socket that never reads: stop() gives up on it after close_timeout."""
    server = rtlab.start_server()
    with upgraded_echo(server):
        server.stop()  # would raise TimeoutError if it waited out websockets' 10 s default
    assert not server.running


def test_a_client_that_closes_the_handshake_but_keeps_its_socket_is_cut_off():
    """A raw socket sends its close frame, reads the server's, and never closes: websockets
    sets a close deadline then but only its own close() waits it out, so the connection
    (and stop(), and rtlab serve's Ctrl-C) waited for ever. It is aborted at the deadline."""
    server = rtlab.start_server()
    with upgraded_echo(server) as raw:
        raw.sendall(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # close 1000, masked with zeros
        raw.settimeout(10 * server.server.close_timeout)  # a hang guard, not the measure
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := raw.recv(4096):  # the server's close frame, then its end
                received += chunk
        assert received == b"\x88\x02\x03\xe8"  # its close frame, then the connection ended
        rtlab.wait_until(lambda: not server.clients, timeout=5, what="the client gone")
        server.stop()
    assert not server.running


def test_the_server_can_emit_and_run_code_on_its_own_thread(server):
    with rtlab.connect(server, "alice") as alice:
        alice.emit("join-room", "lobby", ack=True)
        assert server.emit("announcement", {"text": "hello"}, to="lobby") == 1
        assert alice.wait_for("announcement") == [{"text": "hello"}]
        assert server.call(lambda: sorted(server.server.namespace("/").rooms)) == ["lobby"]
        sessions = server.call(lambda: list(server.server.events.sessions.values()))
        assert server.call(sessions[0].emit, "just-you", 1) is True
        assert alice.wait_for("just-you") == [1]


def test_a_cell_keeps_asyncios_own_tasks_until_a_wait_must_turn_its_loop():
    """Starting, connecting and emitting from a cell need nothing from the cell's loop,
    so nest_asyncio2 stays out (it swaps asyncio's C Task for the Python one); stopping
    a server, whose clients on that loop answer its closing handshake, brings it in."""
    script = """
import asyncio, rtlab

async def cell():
    server = rtlab.start_server()
    alice = rtlab.connect(server, "alice")
    alice.emit("join-room", "lobby", ack=True)
    alice.close()
    print(asyncio.Task is asyncio.tasks._PyTask, hasattr(asyncio, "_nest_patched"))
    server.stop()
    print(asyncio.Task is asyncio.tasks._PyTask, hasattr(asyncio, "_nest_patched"))

asyncio.run(cell())
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split("\n")[:2] == ["False False", "True True"], result.stderr


HALF_CLOSED = {  # a request, then the client's side ended at once: the answer must come
    "/echo": "HTTP/1.1 101 Switching Protocols",
    "/ws?user=alice": "HTTP/1.1 101 Switching Protocols",
    "/ws": "HTTP/1.1 400 Bad Request",  # no user: refused, as ever
}


@pytest.mark.parametrize("target", HALF_CLOSED)
def test_a_client_that_ends_its_side_after_its_request_still_gets_the_answer(server, target):
    request = (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    for _ in range(20):  # websockets 17 tripped on its own assertion, now and then
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(request.encode())
            sock.shutdown(socket.SHUT_WR)  # HTTP's half-close: still reading
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.decode(errors="replace").startswith(HALF_CLOSED[target]), answer[:200]
    assert not [line for line in server.log if line.startswith("ERROR")], list(server.log)
    # ...and each connection is over once answered: none left counted against the address.
    deadline = time.monotonic() + 5
    while server.server.admission.addresses and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a real condition, bounded
    assert not server.server.admission.addresses


@pytest.mark.parametrize("target", ["/ws", "/echo"])  # refused (no user), and admitted
def test_bytes_that_are_no_frame_right_after_a_request_fail_it_cleanly(server, target):
    request = (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    for _ in range(20):  # the headers again, sent before any answer: not a frame
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(request.encode() + request.split("\r\n", 1)[1].encode())
            while sock.recv(4096):
                pass  # closed by the server, answered or not: it is a protocol error
    assert not [line for line in server.log if line.startswith("ERROR")], list(server.log)
    deadline = time.monotonic() + 5
    while server.server.admission.addresses and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a real condition, bounded
    assert not server.server.admission.addresses


def test_a_connection_keeps_only_the_authorization_header_of_its_request(server):
    """websockets keeps the whole request as long as the connection: the lab server keeps
    only the header it reads again (a Bearer token), not a browser's kilobytes."""
    extra = {"User-Agent": "x" * 2000, "Cookie": "c" * 2000, "Authorization": "Bearer abc"}
    with connect(f"{server.url}/ws?user=kept", additional_headers=extra) as ws:
        ws.send(json.dumps({"event": "heartbeat", "id": 1}))
        ws.recv(timeout=5)
        [connection] = [c for c in server.server._clients if c.request.path.startswith("/ws")]
        assert list(connection.request.headers.raw_items()) == [("Authorization", "Bearer abc")]
        assert connection.request.path == "/ws?user=kept"
