"""The opening handshake, checked against RFC 6455 and the `websockets` library."""

import base64
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri
from websockets.utils import accept_key as ws_accept_key

from rtlab.core.handshake import (
    GUID,
    HandshakeError,
    Headers,
    Request,
    Response,
    accept,
    accept_key,
    build_rejection,
    build_request,
    build_response,
    generate_key,
    parse_request,
    parse_response,
    split_head,
)

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3 sample nonce
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

VALID_REQUEST = (
    "GET /chat HTTP/1.1\r\n"
    "Host: server.example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {RFC_KEY}\r\n"
    "Origin: http://example.com\r\n"
    "Sec-WebSocket-Protocol: chat, superchat\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n"
)

VALID_RESPONSE = (
    "HTTP/1.1 101 Switching Protocols\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    f"Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n"
    "\r\n"
)


# --- accept key ------------------------------------------------------------


def test_rfc_sample_accept_key() -> None:
    assert GUID == "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    assert accept_key(RFC_KEY) == RFC_ACCEPT


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(min_size=16, max_size=16))
def test_accept_key_matches_websockets(raw: bytes) -> None:
    key = base64.b64encode(raw).decode()
    assert accept_key(key) == ws_accept_key(key)


@settings(max_examples=100, deadline=None)
@given(key=st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_accept_key_matches_websockets_on_any_ascii(key: str) -> None:
    assert accept_key(key) == ws_accept_key(key)


def test_generate_key_is_base64_of_16_random_bytes() -> None:
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 16


# --- Headers ---------------------------------------------------------------


def test_headers_case_insensitive_and_ordered() -> None:
    h = Headers([("Host", "a"), ("X-Thing", "1"), ("x-thing", "2")])
    assert h.get("HOST") == "a"
    assert h.get("x-THING") == "1"
    assert h.get_all("X-Thing") == ["1", "2"]
    assert h.get_all("missing") == []
    assert h.get("missing") is None
    assert h.get("missing", "d") == "d"
    assert "host" in h and "nope" not in h and 42 not in h
    assert list(h) == [("Host", "a"), ("X-Thing", "1"), ("x-thing", "2")]
    assert len(h) == 3
    assert repr(h) == "Headers([('Host', 'a'), ('X-Thing', '1'), ('x-thing', '2')])"
    assert str(h) == "Host: a\nX-Thing: 1\nx-thing: 2"
    assert h == Headers(list(h)) and hash(h) == hash(Headers(list(h)))
    with pytest.raises(AttributeError):
        h.extra = 1  # type: ignore[attr-defined]


# --- building --------------------------------------------------------------


def test_build_request_exact_bytes() -> None:
    data, key = build_request(
        "server.example.com",
        "/chat",
        RFC_KEY,
        origin="http://example.com",
        protocols=["chat", "superchat"],
        extra_headers=[("Authorization", "Bearer t")],
    )
    assert key == RFC_KEY
    assert data == (
        b"GET /chat HTTP/1.1\r\n"
        b"Host: server.example.com\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Origin: http://example.com\r\n"
        b"Sec-WebSocket-Protocol: chat, superchat\r\n"
        b"Authorization: Bearer t\r\n"
        b"\r\n"
    )


def test_build_request_generates_key() -> None:
    data, key = build_request("h")
    assert parse_request(data).key == key
    assert parse_request(data).path == "/"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "a\r\nEvil: 1"}, "invalid value for header Host"),
        ({"host": "h", "path": "/a b"}, "invalid request path"),
        ({"host": "h", "extra_headers": [("Bad Name", "x")]}, "invalid header name"),
    ],
)
def test_build_request_refuses_injection(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_request(**kwargs)


def test_build_response_exact_bytes() -> None:
    assert build_response(RFC_KEY) == VALID_RESPONSE.encode()
    with_protocol = build_response(RFC_KEY, protocol="chat", extra_headers=[("X-A", "1")])
    assert with_protocol.endswith(b"Sec-WebSocket-Protocol: chat\r\nX-A: 1\r\n\r\n")


def test_build_rejection() -> None:
    data = build_rejection(403, "Forbidden", "origin not allowed: é")
    body = "origin not allowed: é".encode()
    assert data == (
        b"HTTP/1.1 403 Forbidden\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n"
        b"\r\n" + body
    )
    upgrade = build_rejection(
        426, "Upgrade Required", extra_headers=[("Sec-WebSocket-Version", "13")]
    )
    assert b"Sec-WebSocket-Version: 13\r\n" in upgrade
    with pytest.raises(ValueError, match="status from 300 to 599"):
        build_rejection(101, "Switching Protocols")


def test_accept_builds_response_for_request() -> None:
    request = parse_request(VALID_REQUEST.encode())
    assert request.key == RFC_KEY
    assert request.protocols == ["chat", "superchat"]
    assert accept(request) == VALID_RESPONSE.encode()
    assert parse_response(accept(request, protocol="chat"), RFC_KEY).protocol == "chat"
    with pytest.raises(ValueError, match="not offered"):
        accept(request, protocol="mqtt")
    with pytest.raises(HandshakeError, match="missing Sec-WebSocket-Key header"):
        accept(Request("GET", "/", Headers([("Host", "h")])))


# --- parsing ---------------------------------------------------------------


def test_split_head() -> None:
    assert split_head(b"GET / HTTP/1.1\r\nHost: h\r\n") is None
    assert split_head(b"A\r\n\r\n") == (b"A\r\n\r\n", b"")
    assert split_head(b"A\r\n\r\n\x81\x00\r\n\r\n") == (b"A\r\n\r\n", b"\x81\x00\r\n\r\n")


def test_parse_request_valid() -> None:
    request = parse_request(VALID_REQUEST.encode() + b"\x81\x80 trailing frame bytes")
    assert request.method == "GET"
    assert request.path == "/chat"
    assert request.headers.get("host") == "server.example.com"
    assert request.headers.get("Origin") == "http://example.com"
    assert len(request.headers) == 7


def test_parse_request_accepts_token_lists_and_any_case() -> None:
    data = (
        VALID_REQUEST.replace("Upgrade: websocket", "upgrade: h2c, WebSocket")
        .replace("Connection: Upgrade", "CONNECTION: keep-alive, upgrade")
        .encode()
    )
    assert parse_request(data).path == "/chat"


def _mutate(old: str, new: str) -> bytes:
    assert old in VALID_REQUEST
    return VALID_REQUEST.replace(old, new).encode()


BAD_REQUESTS = {
    "wrong method": (_mutate("GET /chat", "POST /chat"), "method must be GET, got 'POST'"),
    "HTTP/1.0": (_mutate("HTTP/1.1", "HTTP/1.0"), "HTTP version must be HTTP/1.1, got 'HTTP/1.0'"),
    "malformed request line": (
        _mutate("GET /chat HTTP/1.1", "GET /chat"),
        "malformed request line",
    ),
    "space in path": (_mutate("GET /chat", "GET /my chat"), "malformed request line"),
    "missing host": (_mutate("Host: server.example.com\r\n", ""), "missing Host header"),
    "no upgrade": (_mutate("Upgrade: websocket\r\n", ""), "missing Upgrade header"),
    "wrong upgrade": (
        _mutate("Upgrade: websocket", "Upgrade: h2c"),
        "Upgrade header must include 'websocket', got 'h2c'",
    ),
    "no connection": (_mutate("Connection: Upgrade\r\n", ""), "missing Connection header"),
    "wrong connection": (
        _mutate("Connection: Upgrade", "Connection: keep-alive"),
        "Connection header must include 'upgrade', got 'keep-alive'",
    ),
    "missing key": (
        _mutate(f"Sec-WebSocket-Key: {RFC_KEY}\r\n", ""),
        "missing Sec-WebSocket-Key header",
    ),
    "short key": (
        _mutate(RFC_KEY, "abc"),
        "Sec-WebSocket-Key must be base64 of 16 bytes, got 'abc'",
    ),
    "key of 15 bytes": (
        _mutate(RFC_KEY, base64.b64encode(b"x" * 15).decode()),
        "Sec-WebSocket-Key must be base64 of 16 bytes",
    ),
    "key not base64": (
        _mutate(RFC_KEY, "!!!!!!!!!!!!!!!!!!!!!!=="),
        "Sec-WebSocket-Key must be base64 of 16 bytes",
    ),
    "two keys": (
        _mutate("Origin:", f"Sec-WebSocket-Key: {RFC_KEY}\r\nOrigin:"),
        "multiple Sec-WebSocket-Key headers",
    ),
    "wrong version": (
        _mutate("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        "Sec-WebSocket-Version must be 13, got '8'",
    ),
    "missing version": (
        _mutate("Sec-WebSocket-Version: 13\r\n", ""),
        "missing Sec-WebSocket-Version header",
    ),
    "header without colon": (
        _mutate("Origin: http://example.com", "Origin http://example.com"),
        "malformed header line: 'Origin http://example.com'",
    ),
    "space before colon": (
        _mutate("Origin: http", "Origin : http"),
        "malformed header line",
    ),
    "obs-fold": (
        _mutate("Origin: http://example.com\r\n", "Origin: http://\r\n example.com\r\n"),
        "obsolete line folding",
    ),
    "control character": (
        _mutate("Origin: http://example.com", "Origin: http://\x00example.com"),
        "invalid characters in header Origin",
    ),
    "bare LF": (
        _mutate("Host: server.example.com\r\n", "Host: server.example.com\n"),
        "bare CR or LF",
    ),
    "incomplete head": (
        VALID_REQUEST.encode()[:-2],
        "request is incomplete: no blank line ending the headers",
    ),
    "LF-only lines": (
        VALID_REQUEST.replace("\r\n", "\n").encode(),
        "not just \\n",
    ),
    "empty": (b"", "request is incomplete"),
}


@pytest.mark.parametrize(("data", "message"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_parse_request_rejects(data: bytes, message: str) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_request(data)
    assert message in str(info.value)


def test_parse_response_valid() -> None:
    response = parse_response(VALID_RESPONSE.encode() + b"\x81\x02hi", RFC_KEY)
    assert response == Response(
        101,
        "Switching Protocols",
        Headers(
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", RFC_ACCEPT),
            ]
        ),
    )
    assert response.protocol is None


def _mutate_response(old: str, new: str) -> bytes:
    assert old in VALID_RESPONSE
    return VALID_RESPONSE.replace(old, new).encode()


WRONG_ACCEPT = accept_key(generate_key())
BAD_RESPONSES = {
    "status 403": (
        build_rejection(403, "Forbidden", "go away"),
        "expected status 101, got 403 Forbidden",
    ),
    "status 200": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        "expected status 101, got 200 OK",
    ),
    "HTTP/1.0": (_mutate_response("HTTP/1.1 101", "HTTP/1.0 101"), "malformed status line"),
    "non-numeric status": (_mutate_response("101", "1O1"), "malformed status line"),
    "no upgrade": (_mutate_response("Upgrade: websocket\r\n", ""), "missing Upgrade header"),
    "wrong upgrade": (
        _mutate_response("Upgrade: websocket", "Upgrade: h2c"),
        "Upgrade header must include 'websocket'",
    ),
    "no connection": (
        _mutate_response("Connection: Upgrade\r\n", ""),
        "missing Connection header",
    ),
    "missing accept": (
        _mutate_response(f"Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n", ""),
        "missing Sec-WebSocket-Accept header",
    ),
    "wrong accept": (
        _mutate_response(RFC_ACCEPT, WRONG_ACCEPT),
        f"Sec-WebSocket-Accept mismatch: expected {RFC_ACCEPT}, got {WRONG_ACCEPT}",
    ),
    "bad header line": (
        _mutate_response("Upgrade: websocket", "Upgrade websocket"),
        "malformed header line",
    ),
    "incomplete": (
        VALID_RESPONSE.encode()[:-1],
        "response is incomplete: no blank line ending the headers",
    ),
}


@pytest.mark.parametrize(("data", "message"), BAD_RESPONSES.values(), ids=BAD_RESPONSES.keys())
def test_parse_response_rejects(data: bytes, message: str) -> None:
    with pytest.raises(HandshakeError) as info:
        parse_response(data, RFC_KEY)
    assert message in str(info.value)


def test_refusal_keeps_status_and_body() -> None:
    data = build_rejection(401, "Unauthorized", "missing token") + b"ignored"
    with pytest.raises(HandshakeError) as info:
        parse_response(data, RFC_KEY)
    assert str(info.value) == "expected status 101, got 401 Unauthorized"
    response = info.value.response
    assert response is not None
    assert (response.status, response.reason, response.body) == (
        401,
        "Unauthorized",
        b"missing token",
    )
    assert response.headers.get("Connection") == "close"


# --- cross-checks with websockets' sans-I/O protocols ---------------------------------


@pytest.mark.parametrize("protocols", [(), ("chat",), ("v2.chat", "chat")])
def test_rtlab_request_accepted_by_websockets_server(protocols: tuple[str, ...]) -> None:
    server = ServerProtocol(subprotocols=["chat"] if protocols else None)
    data, key = build_request(
        "127.0.0.1:8765", "/ws?user=ada", origin="http://localhost", protocols=protocols
    )
    server.receive_data(data)
    [ws_request] = server.events_received()
    assert isinstance(ws_request, WsRequest)
    assert ws_request.path == "/ws?user=ada"
    assert ws_request.headers["Origin"] == "http://localhost"

    ws_response = server.accept(ws_request)
    assert ws_response.status_code == 101
    server.send_response(ws_response)
    assert server.state is State.OPEN
    [response_bytes] = server.data_to_send()

    response = parse_response(response_bytes, key)
    assert response.status == 101
    assert response.headers.get("Sec-WebSocket-Accept") == accept_key(key)
    assert response.protocol == ("chat" if protocols else None)


def test_websockets_server_rejection_parsed() -> None:
    server = ServerProtocol()
    data, key = build_request("h", key="abc")  # a key that is not 16 bytes
    server.receive_data(data)
    [ws_request] = server.events_received()
    ws_response = server.accept(ws_request)
    server.send_response(ws_response)
    [response_bytes, *_] = server.data_to_send()
    with pytest.raises(HandshakeError, match="expected status 101, got 400 Bad Request") as info:
        parse_response(response_bytes, key)
    assert info.value.response is not None
    assert b"Sec-WebSocket-Key" in info.value.response.body


def _websockets_client(
    uri: str = "ws://example.com:8080/chat?room=1", **kwargs: Any
) -> tuple[ClientProtocol, bytes]:
    client = ClientProtocol(parse_uri(uri), **kwargs)
    client.send_request(client.connect())
    [data] = client.data_to_send()
    return client, data


def test_websockets_client_request_parsed_and_accepted() -> None:
    client, data = _websockets_client(origin="http://example.com")
    request = parse_request(data)
    assert request.method == "GET"
    assert request.path == "/chat?room=1"
    assert request.headers.get("Host") == "example.com:8080"
    assert request.headers.get("Origin") == "http://example.com"
    assert request.key == client.key

    client.receive_data(build_response(request.headers.get("Sec-WebSocket-Key") or ""))
    assert client.handshake_exc is None
    assert client.state is State.OPEN
    [ws_response] = client.events_received()
    assert isinstance(ws_response, WsResponse)
    assert ws_response.status_code == 101


def test_websockets_client_negotiates_subprotocol() -> None:
    client, data = _websockets_client(subprotocols=["superchat", "chat"])
    request = parse_request(data)
    assert request.protocols == ["superchat", "chat"]
    client.receive_data(accept(request, protocol="chat"))
    assert client.state is State.OPEN
    assert client.subprotocol == "chat"


def test_websockets_client_refuses_wrong_accept() -> None:
    client, data = _websockets_client()
    parse_request(data)
    client.receive_data(build_response(generate_key()))  # answer for another key
    assert client.state is not State.OPEN
    assert "Sec-WebSocket-Accept" in str(client.handshake_exc)


def test_websockets_client_reads_rtlab_rejection() -> None:
    client, _ = _websockets_client()
    client.receive_data(build_rejection(403, "Forbidden", "origin not allowed"))
    assert isinstance(client.handshake_exc, InvalidStatus)
    assert client.handshake_exc.response.status_code == 403
    assert client.handshake_exc.response.body == b"origin not allowed"
