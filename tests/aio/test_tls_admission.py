"""With TLS, connections are counted by address from the TCP accept, before their TLS
handshake: one that never starts it is an unfinished handshake like any other."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time

import pytest
import trustme
from websockets.sync.client import connect

import rtlab


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context for 127.0.0.1 and a client context that trusts it."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    return server_context, client_context


def raw(port: int) -> socket.socket:
    """A TCP connection that never starts its TLS handshake."""
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def echo_from(url: str, address: str, context: ssl.SSLContext, text: str) -> str:
    """An honest ``wss://`` client's echo, from ``address`` (a loopback one)."""
    port = int(url.rpartition(":")[2].partition("/")[0])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(address, 0))
    with connect(url, sock=sock, ssl=context, open_timeout=5) as ws:
        ws.send(text)
        return ws.recv(timeout=5)


def test_connections_before_tls_count_against_the_address(tls):
    server_context, client_context = tls
    with rtlab.start_server(
        ssl_context=server_context,
        max_connections_per_address=4,
        max_handshakes_per_address=2,
        handshake_timeout=30,
    ) as server:
        admission = server.server.admission
        held = [raw(server.port) for _ in range(6)]  # the limit and the handshake cap
        try:
            rtlab.wait_until(
                lambda: admission.addresses["127.0.0.1"] == 6, what="6 counted before TLS"
            )
            assert admission.unfinished("127.0.0.1") == 6
            for _ in range(3):  # and no more: each one past them is closed at once
                with raw(server.port) as extra:
                    assert extra.recv(1024) == b""
            assert admission.addresses["127.0.0.1"] == 6
            # Another address is served meanwhile, over TLS.
            assert echo_from(server.echo_url, "127.0.0.2", client_context, "hi") == "Echo: hi"
        finally:
            for sock in held:
                sock.close()
        rtlab.wait_until(lambda: not admission.addresses, what="all counted out")
        assert not admission.unfinished("127.0.0.1")
        with connect(server.echo_url, ssl=client_context, open_timeout=5) as ws:
            ws.send("served again")
            assert ws.recv(timeout=5) == "Echo: served again"


def test_the_oldest_connection_still_before_tls_makes_room(tls):
    server_context, client_context = tls
    with rtlab.start_server(
        ssl_context=server_context, max_handshakes_per_address=3, handshake_timeout=30
    ) as server:
        admission = server.server.admission
        admission.grace = 0.2
        idle = [raw(server.port) for _ in range(3)]
        try:
            rtlab.wait_until(lambda: admission.unfinished("127.0.0.1") == 3, what="3 unfinished")
            time.sleep(0.3)  # older than the grace: a slowloris, not a burst
            with connect(server.echo_url, ssl=client_context, open_timeout=5) as ws:
                assert idle[0].recv(1024) == b""  # the oldest is gone, before any TLS
                ws.send("served")
                assert ws.recv(timeout=5) == "Echo: served"
        finally:
            for sock in idle:
                sock.close()
        rtlab.wait_until(lambda: not admission.addresses, what="all counted out")


def test_a_failed_tls_handshake_is_counted_out(tls):
    server_context, _ = tls
    with rtlab.start_server(ssl_context=server_context) as server:
        admission = server.server.admission
        with raw(server.port) as sock:
            rtlab.wait_until(lambda: admission.unfinished("127.0.0.1") == 1, what="counted")
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")  # no ClientHello
            assert sock.recv(1024) == b""  # the server gave up on it
        rtlab.wait_until(lambda: not admission.addresses, what="counted out")


def all_but_the_last_flight(
    sock: socket.socket, context: ssl.SSLContext
) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    """A TLS client on ``sock`` whose handshake is done on its side, its last flight (the
    Finished) still in ``outgoing``: what it writes next goes out in the same send."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_client = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    while True:
        try:
            tls_client.do_handshake()
            return tls_client, incoming, outgoing
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            incoming.write(sock.recv(65536))


def test_a_request_sent_with_the_last_tls_flight_is_answered(tls):
    """The request may reach the server with the client's last handshake message, in the
    same read: it is handed to the connection once that has its TLS transport."""
    server_context, client_context = tls
    with rtlab.start_server(ssl_context=server_context) as server, raw(server.port) as sock:
        tls_client, incoming, outgoing = all_but_the_last_flight(sock, client_context)
        tls_client.write(
            f"GET /feed?after=0 HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
        )
        sock.sendall(outgoing.read())  # the client's Finished and the request, at once
        answer = b""
        while b"\r\n\r\n" not in answer:
            try:
                answer += tls_client.read(65536)
            except ssl.SSLWantReadError:
                incoming.write(sock.recv(65536))
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize("then", ["fin", "close_notify"])
def test_a_request_and_its_end_sent_with_the_last_tls_flight_leave_no_error(tls, then):
    """Sent all at once, the handshake's end, a request and the connection's end: the
    server had answered before it handed the connection over, or finds it gone, and logs
    no error either way (it once read the address of a connection already closed)."""
    server_context, client_context = tls
    with rtlab.start_server(ssl_context=server_context, secret="s") as server:
        for path in ("/ws", "/echo", "/"):
            with raw(server.port) as sock:
                tls_client, _, outgoing = all_but_the_last_flight(sock, client_context)
                request = (
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n"
                )
                tls_client.write(request.encode())
                if then == "close_notify":
                    with contextlib.suppress(ssl.SSLError):
                        tls_client.unwrap()
                sock.sendall(outgoing.read())
                sock.shutdown(socket.SHUT_WR)
                with contextlib.suppress(OSError):
                    while sock.recv(65536):
                        pass
        admission = server.server.admission
        rtlab.wait_until(lambda: not admission.addresses, what="all counted out")
        assert not [line for line in server.log if "ERROR" in line or "Traceback" in line]
