"""The door on every path: Host (DNS rebinding), proxies and loopback trust, page passes,
tokens on /echo and /feed, connections counted by address from accept to close."""

from __future__ import annotations

import socket
import time

import pytest
from websockets.sync.client import connect

import rtlab
from rtlab.aio.admission import Admission
from rtlab.core.tokens import issue

SECRET = "classroom-secret"
KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
UPGRADE = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"


def ask(server, head: str, *, upgrade: bool = False) -> tuple[int, str]:
    """Send one request (``head``: the request line and headers, without the blank line);
    the status and body answered."""
    extra = UPGRADE + KEY if upgrade else "Connection: close\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(f"{head}\r\n{extra}\r\n".encode("latin-1"))
        answer = b""
        while (upgrade and b"\r\n\r\n" not in answer) or not upgrade:
            chunk = raw.recv(65536)
            if not chunk:
                break
            answer += chunk
            if upgrade and answer.startswith(b"HTTP/1.1 101"):
                break
    status, _, rest = answer.partition(b"\r\n")
    return int(status.split()[1]), rest.partition(b"\r\n\r\n")[2].decode()


def host(server) -> str:
    return f"Host: 127.0.0.1:{server.port}"


# -- Host: DNS rebinding --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["127.0.0.1:1", "localhost", "LOCALHOST:8", "[::1]:80", "127.0.0.2"]
)
def test_a_loopback_server_serves_loopback_names_on_any_port(server, name):
    assert ask(server, f"GET /feed?after=0 HTTP/1.1\r\nHost: {name}")[0] == 200


@pytest.mark.parametrize("path", ["/", "/echo.html", "/feed?after=0", "/admission?user=a", "/x"])
def test_a_rebinding_name_gets_421_on_every_path(server, path):
    status, body = ask(server, f"GET {path} HTTP/1.1\r\nHost: evil.example:{server.port}")
    assert status == 421
    assert f"this server does not serve the name 'evil.example:{server.port}'" in body
    assert "--host-name NAME" in body


@pytest.mark.parametrize("path", ["/ws?user=alice", "/echo", "/feed"])
def test_a_rebinding_handshake_gets_421_before_any_upgrade(server, path):
    status, _ = ask(server, f"GET {path} HTTP/1.1\r\nHost: evil.example", upgrade=True)
    assert status == 421


def test_listed_host_names_are_served():
    with rtlab.start_server(hosts=["class.example.org"]) as server:
        assert ask(server, "GET / HTTP/1.1\r\nHost: class.example.org:8765")[0] == 200
        assert ask(server, "GET / HTTP/1.1\r\nHost: class.example.org.")[0] == 200
        assert ask(server, "GET / HTTP/1.1\r\nHost: other.example.org")[0] == 421
    with rtlab.start_server(hosts=["*"]) as server:
        assert ask(server, "GET / HTTP/1.1\r\nHost: anything.example")[0] == 200


def test_beyond_loopback_addresses_and_own_names_are_served_but_not_other_names():
    everywhere = Admission(bound="0.0.0.0")
    assert everywhere._host_served("192.168.1.10:8765")
    assert everywhere._host_served("[fe80::1]")
    assert everywhere._host_served(socket.gethostname())
    assert not everywhere._host_served("evil.example")
    assert Admission(bound="0.0.0.0", tls=True)._host_served("class.example.org")
    local = Admission(bound="127.0.0.1")
    assert not local._host_served("192.168.1.10")
    assert not local._host_served(socket.gethostname() + ".invalid")


def test_a_request_without_host_or_with_two_is_a_400(server):
    assert ask(server, "GET / HTTP/1.1") == (400, "the request has no Host header\n")
    assert ask(server, f"GET / HTTP/1.1\r\n{host(server)}\r\nHost: evil.example") == (
        400,
        "the request has more than one Host\n",
    )


@pytest.mark.parametrize("name", ["Origin", "Authorization", "Sec-WebSocket-Key"])
def test_duplicate_headers_are_a_400_naming_them(server, name):
    head = f"GET /ws?user=a HTTP/1.1\r\n{host(server)}\r\n{name}: x\r\n{name}: y"
    assert ask(server, head, upgrade=True) == (400, f"the request has more than one {name}\n")


# -- proxies and loopback trust ------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["X-Forwarded-For: 10.0.0.7", "Forwarded: for=10.0.0.7", "X-Real-IP: 10.0.0.7"]
)
def test_user_through_a_proxy_is_refused_with_advice(server, header):
    head = f"GET /ws?user=alice HTTP/1.1\r\n{host(server)}\r\n{header}"
    status, body = ask(server, head, upgrade=True)
    assert status == 403
    assert body.startswith(f"?user=NAME came through a proxy ({header.split(':')[0]})")
    assert "run the server with --secret and give each user a token" in body
    # The page asks /admission with the same headers the proxy adds: same answer.
    explained = ask(server, f"GET /admission?user=alice HTTP/1.1\r\n{host(server)}\r\n{header}")
    assert '"status": 403' in explained[1]


def test_through_a_proxy_a_token_still_works():
    with rtlab.start_server(secret=SECRET) as server:
        token = issue(SECRET, "alice", 60, time.time())
        head = f"GET /ws?token={token} HTTP/1.1\r\n{host(server)}\r\nX-Forwarded-For: 10.0.0.7"
        assert ask(server, head, upgrade=True)[0] == 101


def test_anonymous_servers_take_names_through_proxies_too():
    with rtlab.start_server(allow_anonymous=True) as server:
        head = f"GET /ws?user=a HTTP/1.1\r\n{host(server)}\r\nX-Forwarded-For: 10.0.0.7"
        assert ask(server, head, upgrade=True)[0] == 101


def test_a_page_pass_admits_names_and_the_proxys_host(server):
    """As through jupyter-server-proxy: from 127.0.0.1, the hub's Host, forwarding headers."""
    given = server.page_pass()
    assert given
    hub = "Host: hub.example.org\r\nX-Forwarded-For: 10.0.0.7\r\nOrigin: https://hub.example.org"
    for path in (f"/?user=erin&pass={given}", f"/echo.html?pass={given}"):
        assert ask(server, f"GET {path} HTTP/1.1\r\n{hub}")[0] == 200
    for path in (f"/ws?user=erin&pass={given}", f"/echo?pass={given}"):
        assert ask(server, f"GET {path} HTTP/1.1\r\n{hub}", upgrade=True)[0] == 101
    assert ask(server, f"GET /ws?user=erin HTTP/1.1\r\n{hub}", upgrade=True)[0] == 421
    forged = issue("guessed", "page", 60, time.time())
    assert ask(server, f"GET /ws?user=erin&pass={forged} HTTP/1.1\r\n{hub}", upgrade=True)[0] == 421


def test_page_url_carries_the_pass_only_through_the_proxy(server, monkeypatch):
    from rtlab.notebook import page as page_module

    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    assert rtlab.page_url(server, "?user=erin") == f"{server.http_url}?user=erin"
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    monkeypatch.setattr(page_module.importlib.util, "find_spec", lambda name: object())
    url = rtlab.page_url(server, "?user=erin&room=lobby")
    assert url.startswith(f"/user/ada/proxy/{server.port}/?user=erin&room=lobby&pass=")
    assert rtlab.page_url(server, "echo.html").startswith(
        f"/user/ada/proxy/{server.port}/echo.html?pass="
    )


# -- every WebSocket path ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/echo", "/feed"])
def test_with_a_secret_echo_and_feed_need_a_token_too(path):
    with rtlab.start_server(secret=SECRET) as server:
        status, body = ask(server, f"GET {path} HTTP/1.1\r\n{host(server)}", upgrade=True)
        assert (status, body) == (
            401,
            "this server needs a token: ?token=... or Authorization: Bearer ...\n",
        )
        assert (
            ask(server, f"GET {path}?token=x.y HTTP/1.1\r\n{host(server)}", upgrade=True)[0] == 401
        )
        token = issue(SECRET, "alice", 60, time.time())
        with connect(f"{server.url}{path}?token={token}") as ws:
            if path == "/echo":
                ws.send("hi")
                assert ws.recv(timeout=5) == "Echo: hi"


def test_a_token_sent_to_a_server_without_its_secret_is_told_so(server):
    """Not "add ?user=NAME": the server cannot check any token, and its user cannot mend it."""
    said = (
        "this server was started without its secret (RTLAB_SECRET), so it cannot check "
        "tokens: tell your instructor\n"
    )
    token = issue(SECRET, "alice", 60, time.time())
    for head in (
        f"GET /ws?token={token} HTTP/1.1\r\n{host(server)}",
        f"GET /ws HTTP/1.1\r\n{host(server)}\r\nAuthorization: Bearer {token}",
    ):
        assert ask(server, head, upgrade=True) == (401, said)
    explained = ask(server, f"GET /admission?token={token} HTTP/1.1\r\n{host(server)}")[1]
    assert '"status": 401' in explained and "RTLAB_SECRET" in explained
    assert ask(server, f"GET /ws HTTP/1.1\r\n{host(server)}", upgrade=True) == (
        400,
        "say who you are: add ?user=NAME to the URL\n",
    )
    assert ask(server, f"GET /ws?user=alice HTTP/1.1\r\n{host(server)}", upgrade=True)[0] == 101


def test_a_non_ascii_token_is_a_401_not_a_500():
    with rtlab.start_server(secret=SECRET) as server:
        head = f"GET /ws HTTP/1.1\r\n{host(server)}\r\nAuthorization: Bearer abc.d\xe9f"
        status, body = ask(server, head, upgrade=True)
        assert (status, body) == (
            401,
            "invalid token: malformed token: tokens are ASCII (base64url and a dot)\n",
        )
        assert (
            ask(server, f"GET /ws?token=a.%C3%A9 HTTP/1.1\r\n{host(server)}", upgrade=True)[0]
            == 401
        )


def test_the_per_address_limit_counts_echo_and_feed_connections():
    with rtlab.start_server(max_connections_per_address=2) as server:
        with connect(server.echo_url), connect(server.feed_url):
            status, body = ask(server, f"GET /echo HTTP/1.1\r\n{host(server)}", upgrade=True)
            assert (status, body) == (429, "2 connections are open from 127.0.0.1 already\n")
            assert ask(server, f"GET /ws?user=a HTTP/1.1\r\n{host(server)}", upgrade=True)[0] == 429
        rtlab.wait_until(lambda: server.clients == [], what="both to close")
        with connect(server.echo_url) as ws:
            ws.send("room again")
            assert ws.recv(timeout=5) == "Echo: room again"


def test_the_per_user_limit_counts_every_path_a_token_opens():
    with rtlab.start_server(secret=SECRET, max_connections_per_user=2) as server:
        alice, bob = (issue(SECRET, name, 60, time.time()) for name in ("alice", "bob"))
        with connect(f"{server.echo_url}?token={alice}") as echo:
            with connect(f"{server.feed_url}?token={alice}"):
                for path in ("/echo", "/feed", "/ws"):
                    status, body = ask(
                        server, f"GET {path}?token={alice} HTTP/1.1\r\n{host(server)}", upgrade=True
                    )
                    assert (status, body) == (429, "alice already has 2 connections open\n")
                with connect(f"{server.echo_url}?token={bob}") as other:
                    other.send("bob is served")
                    assert other.recv(timeout=5) == "Echo: bob is served"
            # One closed: its place is free again.
            rtlab.wait_until(lambda: len(server.clients) == 1, what="the feed to close")
            with connect(f"{server.url}/ws?token={alice}") as ws:
                ws.send('{"event": "heartbeat", "id": 1}')
                assert '"ack":1' in ws.recv(timeout=5)
            echo.send("still open")
            assert echo.recv(timeout=5) == "Echo: still open"
        rtlab.wait_until(lambda: not server.server.admission.users, what="all counted out")


def test_past_the_cap_the_oldest_unfinished_handshake_makes_room():
    with rtlab.start_server(max_handshakes_per_address=3, handshake_timeout=5) as server:
        admission = server.server.admission
        admission.grace = 0.2
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(3)]
        try:
            rtlab.wait_until(lambda: admission.unfinished("127.0.0.1") == 3, what="3 unfinished")
            time.sleep(0.3)  # older than the grace: a slowloris, not a burst
            with connect(server.echo_url) as ws:  # a fourth connection is served
                assert idle[0].recv(1024) == b""  # ...and the oldest is gone
                ws.send("served")
                assert ws.recv(timeout=5) == "Echo: served"
            assert any("closed the oldest of 3 unfinished" in line for line in server.log)
        finally:
            for sock in idle:
                sock.close()
        rtlab.wait_until(lambda: not admission.addresses, what="all counted out")


def test_an_address_never_holds_more_than_its_limit_plus_the_handshake_cap():
    with rtlab.start_server(
        max_connections_per_address=2, max_handshakes_per_address=1, handshake_timeout=5
    ) as server:
        admission = server.server.admission
        # Fresh ones (a burst) are not made to leave: each may be a browser's.
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(3)]
        try:
            rtlab.wait_until(lambda: admission.addresses["127.0.0.1"] == 3, what="3 counted")
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as fourth:
                assert fourth.recv(1024) == b""  # closed without a word
            assert any("closed a connection from 127.0.0.1 at once" in x for x in server.log)
        finally:
            for sock in held:
                sock.close()
        rtlab.wait_until(lambda: not admission.addresses, what="all counted out")
        with connect(server.echo_url) as ws:
            ws.send("served again")
            assert ws.recv(timeout=5) == "Echo: served again"


def test_an_address_full_of_stalled_handshakes_still_lets_a_newcomer_in():
    """A slowloris that fills its address must not lock that address out (a class behind
    one NAT address): past the limit, the oldest stalled handshake makes room too."""
    with rtlab.start_server(
        max_connections_per_address=2, max_handshakes_per_address=1, handshake_timeout=5
    ) as server:
        admission = server.server.admission
        admission.grace = 0.2
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(3)]
        try:
            rtlab.wait_until(lambda: admission.addresses["127.0.0.1"] == 3, what="3 counted")
            time.sleep(0.3)  # all three stalled now
            with connect(server.echo_url) as ws:
                assert held[0].recv(1024) == b""  # the oldest made room
                ws.send("served")
                assert ws.recv(timeout=5) == "Echo: served"
            assert any("closed the oldest of" in line for line in server.log)
        finally:
            for sock in held:
                sock.close()
        rtlab.wait_until(lambda: not admission.addresses, what="all counted out")


# -- malformed input: a 4xx that names it -------------------------------------------------------


@pytest.mark.parametrize("after", ["%C2%B2", "-1", "1e3", "9" * 40])
def test_feed_polling_refuses_what_is_not_a_plain_number(server, after):
    status, body = ask(server, f"GET /feed?after={after} HTTP/1.1\r\n{host(server)}")
    assert status == 400
    assert "after must be a whole number" in body


def test_a_path_that_looks_like_a_url_is_not_routed(server):
    assert ask(server, f"GET //evil/ws?user=a HTTP/1.1\r\n{host(server)}", upgrade=True)[0] == 404
    assert ask(server, f"GET //[/x HTTP/1.1\r\n{host(server)}")[0] == 404


# -- descriptors ----------------------------------------------------------------------------


def test_the_server_raises_its_descriptor_limit_and_says_so(server):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert server.server.descriptors == soft
    assert soft == hard or hard == resource.RLIM_INFINITY
    assert any(line.startswith("INFO file descriptors: ") for line in server.log)


def test_a_low_soft_limit_is_raised_to_the_hard_one():
    import subprocess
    import sys

    code = (
        "import resource\n"
        "from rtlab.aio.descriptors import raise_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "limit, said = raise_limit()\n"
        "assert limit == resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard, limit\n"
        "print(said)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "(raised from 256), room for about" in done.stdout


def test_a_limit_that_cannot_be_raised_is_said(monkeypatch):
    import resource

    from rtlab.aio import descriptors

    monkeypatch.setattr(resource, "getrlimit", lambda which: (256, 4096))

    def refuse(which, limits):
        raise ValueError("not allowed")

    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert descriptors.raise_limit() == (
        256,
        "file descriptors: 256 (could not raise it to 4096: not allowed), "
        "room for about 192 open connections",
    )
