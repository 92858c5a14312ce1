"""The fault-injecting proxy, between real clients and the lab server."""

from __future__ import annotations

import os
import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

import rtlab


@pytest.fixture
def proxy(server):
    with rtlab.start_proxy(server) as running:
        yield running


def echo(url: str, text: str) -> str:
    with connect(url + "/echo") as ws:
        ws.send(text)
        return ws.recv(timeout=10)


def test_forwards_and_counts_bytes_both_ways(proxy):
    assert echo(proxy.url, "through the proxy") == "Echo: through the proxy"
    traffic = proxy.traffic
    assert traffic.connections == 1
    assert traffic.to_server > len("through the proxy")  # handshake + masked frame
    assert traffic.to_client > len("Echo: through the proxy")
    assert proxy.reset() == traffic
    assert proxy.traffic.total == 0


def test_latency_delays_each_way(proxy):
    with connect(proxy.url + "/echo") as ws:
        proxy.faults(latency=0.15)
        started = time.monotonic()
        ws.send("slow")
        assert ws.recv(timeout=10) == "Echo: slow"
        took = time.monotonic() - started
    # A lower bound only: latency can only add time, never remove it.
    assert took >= 0.3


@pytest.mark.slow
def test_bandwidth_cap_slows_a_large_message(proxy):
    with connect(proxy.url + "/echo") as ws:
        proxy.faults(bandwidth=100_000)
        started = time.monotonic()
        data = os.urandom(50_000)  # incompressible, whatever permessage-deflate does
        ws.send(data)
        assert ws.recv(timeout=20) == data
        took = time.monotonic() - started
    assert took >= 0.9  # 100 kB each way at 100 kB/s: at least about a second


def test_freeze_holds_traffic_until_thaw(proxy):
    with connect(proxy.url + "/echo") as ws:
        proxy.freeze()
        ws.send("held")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.3)
        assert proxy.connections == 1  # the sockets stay open
        proxy.thaw()
        assert ws.recv(timeout=10) == "Echo: held"


def test_cut_closes_both_sides(server, proxy):
    with connect(proxy.url + "/echo") as ws:
        rtlab.wait_until(lambda: len(server.clients) == 1, what="the server to see the client")
        assert proxy.cut() == 1
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code is None or ws.close_code == 1006
    rtlab.wait_until(lambda: server.clients == [], what="the server to see the cut")


def test_cut_after_n_bytes_forwards_exactly_n(server, proxy):
    proxy.faults(cut_after=10)
    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), 5) as raw:
        raw.sendall(b"GET /feed?after=0 HTTP/1.1\r\nHost: x\r\n\r\n")  # 40 bytes
        received = b""
        while chunk := raw.recv(4096):
            received += chunk
    assert proxy.traffic.to_server == 10
    assert proxy.traffic.to_client == 0
    assert received == b""


def test_bad_cut_after_is_refused(proxy):
    with pytest.raises(ValueError, match="cut_after must be 0 or more bytes"):
        proxy.faults(cut_after=-1)


def test_stop_cuts_open_connections(server):
    proxy = rtlab.start_proxy(server)
    with connect(proxy.url + "/echo") as ws:
        proxy.stop()
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
    assert repr(proxy) == "<RunningProxy stopped>"


def test_start_proxy_refuses_a_url_without_a_port():
    with pytest.raises(ValueError, match="with a host and a port"):
        rtlab.start_proxy("ws://127.0.0.1")


def test_capture_decodes_a_real_handshake_and_frames_both_ways(server):
    with rtlab.start_proxy(server, capture=True) as proxy:
        with connect(proxy.url + "/echo", compression=None) as ws:
            ws.send("hello")
            assert ws.recv(timeout=10) == "Echo: hello"
            ws.send(b"\x00\x01")
            assert ws.recv(timeout=10) == b"\x00\x01"
        rtlab.wait_until(lambda: len(proxy.wire.records) == 8, what="both close frames")
        assert proxy.wire.text() == (
            "conn  dir  opcode  FIN  RSV1  MASK  length  data\n"
            "   1  C→S  HTTP                          0  GET /echo HTTP/1.1\n"
            "   1  S→C  HTTP                          0  HTTP/1.1 101 Switching Protocols\n"
            "   1  C→S  TEXT    1    0     1          5  hello\n"
            "   1  S→C  TEXT    1    0     0         11  Echo: hello\n"
            "   1  C→S  BINARY  1    0     1          2  binary 00 01\n"
            "   1  S→C  BINARY  1    0     0          2  binary 00 01\n"
            "   1  C→S  CLOSE   1    0     1          2  1000\n"
            "   1  S→C  CLOSE   1    0     0          2  1000"
        )
        times = [record.time for record in proxy.wire.records]
        assert times == sorted(times) and times[0] >= 0


def test_capture_inflates_what_permessage_deflate_compressed(server):
    with rtlab.start_proxy(server, capture=True) as proxy:
        with connect(proxy.url + "/echo") as ws:  # websockets offers permessage-deflate
            ws.send("la " * 100)
            ws.recv(timeout=10)
        rtlab.wait_until(lambda: len(proxy.wire.records) >= 4, what="the text frames")
        sent = proxy.wire.records[2]
        assert (sent.opcode, sent.rsv1, sent.payload, sent.inflated) == (
            "TEXT",
            True,
            "la " * 100,
            300,
        )
        assert sent.length < 300


def test_capture_keeps_decoding_many_connections_and_a_plain_page(server):
    with rtlab.start_proxy(server, capture=True) as proxy:
        for text in ("one", "two"):
            assert echo(proxy.url, text) == f"Echo: {text}"
        with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), 5) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            while raw.recv(65536):
                pass
        rtlab.wait_until(lambda: len(proxy.wire.records) == 14, what="every record")
        records = proxy.wire.records
        assert [r.payload for r in records if r.opcode == "TEXT"] == [
            "one",
            "Echo: one",
            "two",
            "Echo: two",
        ]
        page = [r for r in records if r.conn == 3]
        assert [r.line for r in page] == ["GET / HTTP/1.1", "HTTP/1.1 200 OK"]
        assert page[1].length > 100 and "<html" in page[1].payload.lower()


def test_a_cut_link_shows_no_close_frame_and_forwarding_is_unchanged(server):
    with rtlab.start_proxy(server, capture=True) as proxy:
        with connect(proxy.url + "/echo", compression=None) as ws:
            ws.send("before")
            assert ws.recv(timeout=10) == "Echo: before"
            assert proxy.cut() == 1
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
        assert [r.opcode for r in proxy.wire.records] == ["", "", "TEXT", "TEXT"]
        assert proxy.traffic.connections == 1


def test_wire_needs_capture(proxy):
    with pytest.raises(RuntimeError, match="start it with capture=True"):
        proxy.wire  # noqa: B018
