"""The door policy over real sockets: tokens (401), origins (403), limits (429), TLS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import time

import pytest
import trustme
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

import rtlab
from rtlab.aio.client import EventClient
from rtlab.core.tokens import issue
from tests.cli.test_cli import RTLAB, start, wait_for_line

SECRET = "classroom-secret"


def refusal(url: str, **kwargs) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as caught:
        connect(url, open_timeout=5, **kwargs)
    response = caught.value.response
    return response.status_code, response.body.decode()


@pytest.fixture
def guarded():
    with rtlab.start_server(secret=SECRET) as server:
        yield server


def test_a_valid_token_decides_who_you_are(guarded):
    token = issue(SECRET, "alice", 60, time.time())

    async def main() -> dict:
        # The user name given beside the token is ignored: the token decides.
        async with await EventClient.connect(guarded.url, "mallory", token=token) as client:
            await client.emit("join-room", "lobby", ack=True)
            await client.emit("send-message", {"roomId": "lobby", "message": "hi"})
            return (await client.wait_for("receive-message"))[0]

    assert asyncio.run(main())["userId"] == "alice"


def test_the_token_also_works_in_an_authorization_header(guarded):
    token = issue(SECRET, "bob", 60, time.time())
    with connect(
        guarded.url + "/ws", additional_headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        ws.send('{"event": "heartbeat", "id": 1}')
        assert '"ack":1' in ws.recv(timeout=5)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda now: "?user=alice", "this server needs a token"),
        (lambda now: "?token=garbage", "invalid token: malformed token"),
        (lambda now: f"?token={issue('other-secret', 'alice', 60, now)}", "bad signature"),
        (lambda now: f"?token={issue(SECRET, 'alice', 1, now - 10)}", "invalid token: expired"),
        (lambda now: f"?token={issue(SECRET, 'not a name', 60, now)}", "names an invalid user"),
    ],
)
def test_bad_tokens_get_401_before_any_upgrade(guarded, make, reason):
    status, body = refusal(guarded.url + "/ws" + make(time.time()))
    assert status == 401
    assert reason in body


def test_a_tampered_token_is_refused(guarded):
    token = issue(SECRET, "alice", 60, time.time())
    payload, signature = token.split(".")
    forged = issue("whatever", "admin", 60, time.time()).split(".")[0] + "." + signature
    assert refusal(f"{guarded.url}/ws?token={forged}")[0] == 401
    assert refusal(f"{guarded.url}/ws?token={payload}.{signature[::-1]}")[0] == 401


def test_a_foreign_origin_gets_403_and_the_servers_own_page_is_allowed(server):
    status, body = refusal(server.echo_url, origin="http://evil.example")
    assert status == 403
    assert "origin http://evil.example is not allowed" in body
    with connect(server.echo_url, origin=f"http://127.0.0.1:{server.port}") as ws:
        ws.send("same site")
        assert ws.recv(timeout=5) == "Echo: same site"
    with connect(server.echo_url) as ws:  # no Origin: not a browser
        ws.send("script")
        assert ws.recv(timeout=5) == "Echo: script"


def test_an_allow_list_admits_its_origins_only():
    with rtlab.start_server(origins=["https://class.example.org"]) as server:
        with connect(server.echo_url, origin="https://class.example.org") as ws:
            ws.send("ok")
            assert ws.recv(timeout=5) == "Echo: ok"
        assert refusal(server.echo_url, origin="https://evil.example")[0] == 403
    with (
        rtlab.start_server(origins=["*"]) as server,
        connect(server.echo_url, origin="https://anywhere.example") as ws,
    ):
        ws.send("unprotected")
        assert ws.recv(timeout=5) == "Echo: unprotected"


def test_connections_per_user_are_limited_with_429():
    with rtlab.start_server(max_connections_per_user=2) as server:
        first = rtlab.connect(server, "alice")
        second = rtlab.connect(server, "alice")
        status, body = refusal(f"{server.url}/ws?user=alice")
        assert (status, body) == (429, "alice already has 2 connections open\n")
        with rtlab.connect(server, "bob") as bob:  # others are unaffected
            assert bob.emit("heartbeat", ack=True)["time"].endswith("Z")
        first.close()
        rtlab.wait_until(lambda: len(server.clients) == 1, what="alice's first to close")
        with rtlab.connect(server, "alice") as third:
            assert third.emit("heartbeat", ack=True)
        second.close()


def test_connections_per_address_are_limited_with_429():
    with rtlab.start_server(max_connections_per_address=1) as server:
        with rtlab.connect(server, "alice"):
            status, body = refusal(f"{server.url}/ws?user=bob")
        assert status == 429
        assert "connections are open from 127.0.0.1 already" in body


def test_wss_with_a_local_certificate_authority():
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    with rtlab.start_server(ssl_context=server_context) as server:
        assert server.url.startswith("wss://127.0.0.1:")
        assert server.http_url.startswith("https://127.0.0.1:")
        with connect(server.echo_url, ssl=client_context) as ws:
            ws.send("secret")
            assert ws.recv(timeout=5) == "Echo: secret"
        with pytest.raises(ssl.SSLCertVerificationError):
            connect(server.echo_url, ssl=ssl.create_default_context(), open_timeout=5)


@pytest.mark.slow
def test_rtlab_token_and_serve_secret_end_to_end(tmp_path):
    made = subprocess.run(
        [*RTLAB, "token", "--secret", SECRET, "--user", "alice", "--user", "bob"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert made.returncode == 0, made.stderr
    tokens = dict(line.split("\t") for line in made.stdout.splitlines())
    assert set(tokens) == {"alice", "bob"}
    process = start("serve", "--port", "0", "--secret", SECRET)
    try:
        url = wait_for_line(process, r"events\s+(ws://127\.0\.0\.1:\d+)/ws\?token=TOKEN").group(1)
        with connect(f"{url}/ws?token={tokens['bob']}") as ws:
            ws.send('{"event": "join-room", "data": "lobby", "id": 1}')
            assert '"members":["bob"]' in ws.recv(timeout=5)
        assert refusal(f"{url}/ws?user=bob")[0] == 401
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


@pytest.mark.slow
def test_serve_with_tls_files(tmp_path):
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    certificate.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    certificate.private_key_pem.write_to_path(tmp_path / "key.pem")
    files = ["--certfile", str(tmp_path / "cert.pem"), "--keyfile", str(tmp_path / "key.pem")]
    process = start("serve", "--port", "0", *files)
    try:
        url = wait_for_line(process, r"echo\s+(wss://127\.0\.0\.1:\d+/echo)").group(1)
        context = ssl.create_default_context()
        authority.configure_trust(context)
        with connect(url, ssl=context) as ws:
            ws.send("over TLS")
            assert ws.recv(timeout=5) == "Echo: over TLS"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_serve_refuses_half_a_tls_configuration_and_missing_files(tmp_path):
    half = subprocess.run(
        [*RTLAB, "serve", "--certfile", "x.pem"], capture_output=True, text=True, timeout=30
    )
    assert half.returncode == 2
    assert "--certfile and --keyfile go together" in half.stderr
    missing = subprocess.run(
        [*RTLAB, "serve", "--certfile", str(tmp_path / "no.pem"), "--keyfile", "no.pem"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2
    assert f"rtlab serve: error: --certfile {tmp_path / 'no.pem'}: no such file" in missing.stderr


@pytest.mark.slow
def test_rtlab_token_needs_a_secret_and_valid_names(monkeypatch):
    monkeypatch.delenv("RTLAB_SECRET", raising=False)
    none = subprocess.run([*RTLAB, "token", "--user", "a"], capture_output=True, text=True)
    assert none.returncode == 2
    assert "give --secret" in none.stderr
    bad = subprocess.run(
        [*RTLAB, "token", "--secret", "s", "--user", "no spaces"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "not a valid user name" in bad.stderr


def test_handshake_timeout_drops_a_slowloris():
    import socket

    with rtlab.start_server(handshake_timeout=0.5) as server:
        with socket.create_connection((server.host, server.port), timeout=5) as raw:
            raw.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            # The server hangs up; had it waited, recv would raise after our own 5 s.
            assert raw.recv(1024) == b""
        with connect(server.echo_url) as ws:
            ws.send("others fine")
            assert ws.recv(timeout=5) == "Echo: others fine"


def test_a_token_client_knows_its_name_from_the_token(guarded):
    token = issue(SECRET, "alice", 60, time.time())

    async def main() -> str:
        async with await EventClient.connect(guarded.url, "whoever", token=token) as client:
            return client.user

    assert asyncio.run(main()) == "alice"


@pytest.mark.slow
def test_serve_says_its_descriptor_limit_and_serves_the_host_names_given():
    import socket

    process = start("serve", "--port", "0", "--host-name", "class.example.org")
    try:
        port = int(wait_for_line(process, r"feed\s+ws://127\.0\.0\.1:(\d+)/feed").group(1))
        wait_for_line(process, r"File descriptors: \d+.*room for about \d+ open connections\.")
        for name, status in [("class.example.org:8765", b"200"), ("evil.example", b"421")]:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                raw.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
                assert raw.recv(4096).startswith(b"HTTP/1.1 " + status)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
