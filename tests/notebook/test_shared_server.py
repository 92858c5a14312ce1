"""Students' notebooks on the instructor's server: RTLAB_SERVER / RTLAB_TOKEN, against a
real ``rtlab serve --secret`` process (and one with TLS), tokens from ``rtlab token``."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import time

import pytest
import trustme
from websockets.exceptions import InvalidStatus

import rtlab
from rtlab.core.tokens import issue
from rtlab.notebook.shared import SharedServer, server_url
from tests.cli.test_cli import RTLAB, start, wait_for_line

pytestmark = pytest.mark.slow  # rtlab serve processes, with tokens and TLS

SECRET = "workshop-secret"


def tokens(*users: str) -> dict[str, str]:
    """``rtlab token --secret ... --user A --user B``: one ``user<TAB>token`` line each."""
    args = [arg for user in users for arg in ("--user", user)]
    done = subprocess.run(
        [*RTLAB, "token", "--secret", SECRET, *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    if len(users) == 1:  # one user: the token alone
        return {users[0]: done.stdout.strip()}
    return dict(line.split("\t") for line in done.stdout.splitlines())


def serving(*args: str):  # type: ignore[no-untyped-def]
    process = start("serve", "--port", "0", "--secret", SECRET, *args)
    base = wait_for_line(process, r"events\s+(wss?://127\.0\.0\.1:\d+)/ws").group(1)
    return process, base


@pytest.fixture
def classroom():
    """``rtlab serve --secret`` in a process of its own; its base URL (ws://127.0.0.1:PORT)."""
    process, base = serving()
    yield base
    process.terminate()
    process.wait(timeout=10)


def test_students_chat_through_the_environment_variables(classroom, monkeypatch):
    issued = tokens("ann", "ben")
    monkeypatch.setenv("RTLAB_SERVER", classroom)
    monkeypatch.setenv("RTLAB_TOKEN", issued["ann"])
    ann_server = rtlab.shared_server()
    assert ann_server == SharedServer(classroom, issued["ann"])
    assert ann_server.user == "ann"
    ben_server = rtlab.shared_server(token=issued["ben"])  # the URL from the variable
    with rtlab.connect(ann_server, "ann") as ann, rtlab.connect(ben_server, "ben") as ben:
        assert ann.emit("join-room", "table-3", ack=True)["members"] == ["ann"]
        assert ben.emit("join-room", "table-3", ack=True)["members"] == ["ann", "ben"]
        ack = ann.emit("send-message", {"roomId": "table-3", "message": "hi ben"}, ack=True)
        assert ack["delivered"] == 2
        [message] = ben.wait_for("receive-message")
        assert (message["userId"], message["message"]) == ("ann", "hi ben")


def test_chat_panes_on_the_shared_server(classroom):
    issued = tokens("cat", "dan")
    cat_server = rtlab.shared_server(classroom, issued["cat"])
    dan_server = rtlab.shared_server(classroom, issued["dan"])
    cat = rtlab.ChatPane(cat_server, cat_server.user, "table-1")
    dan = rtlab.ChatPane(dan_server, dan_server.user, "table-1")
    try:
        rtlab.wait_until(lambda: cat.online == ["cat", "dan"], what="cat to see dan")
        cat.send("hello table 1")
        assert dan.wait_for_messages(1) == [("cat", "hello table 1")]
    finally:
        cat.close()
        dan.close()


def test_aconnect_takes_the_token_too(classroom):
    shared = rtlab.shared_server(classroom, tokens("eve")["eve"])

    async def join() -> list[str]:
        eve = await rtlab.aconnect(shared, "eve")
        try:
            return (await eve.emit("join-room", "table-2", ack=True))["members"]
        finally:
            await eve.close()

    assert asyncio.run(asyncio.wait_for(join(), 30)) == ["eve"]


def test_a_token_connects_only_as_its_own_user(classroom):
    shared = rtlab.shared_server(classroom, tokens("ann")["ann"])
    with pytest.raises(ValueError, match="names 'ann': connect as 'ann', not 'alice'"):
        rtlab.connect(shared, "alice")


def test_without_a_token_the_server_answers_401(classroom, monkeypatch):
    monkeypatch.delenv("RTLAB_TOKEN", raising=False)
    shared = rtlab.shared_server(classroom)
    assert shared.token is None and shared.user is None
    with pytest.raises(InvalidStatus) as refused:
        rtlab.connect(shared, "ann")
    assert refused.value.response.status_code == 401


def test_wss_with_the_class_certificate_authority(tmp_path, monkeypatch):
    """TLS as docs/workshop.md sets it up: --certfile/--keyfile on the server, and the
    students' Python trusting the class's authority through SSL_CERT_FILE."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    cert, key, ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    certificate.cert_chain_pems[0].write_to_path(cert)
    certificate.private_key_pem.write_to_path(key)
    authority.cert_pem.write_to_path(ca)
    process, base = serving("--certfile", str(cert), "--keyfile", str(key))
    try:
        assert base.startswith("wss://")
        monkeypatch.setenv("RTLAB_SERVER", base.replace("wss://", "https://") + "/")
        monkeypatch.setenv("RTLAB_TOKEN", tokens("fay")["fay"])
        shared = rtlab.shared_server()
        assert shared.url == base
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(ssl.SSLCertVerificationError):  # the class's authority is unknown
            rtlab.connect(shared, "fay")
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        with rtlab.connect(shared, "fay") as fay:
            assert fay.emit("join-room", "table-4", ack=True)["members"] == ["fay"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_without_a_server_a_clear_error_or_the_default(monkeypatch):
    monkeypatch.delenv("RTLAB_SERVER", raising=False)
    with pytest.raises(LookupError, match="set RTLAB_SERVER"):
        rtlab.shared_server()
    fallback = object()
    assert rtlab.shared_server(default=fallback) is fallback


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("wss://class.example.org:8765", "wss://class.example.org:8765"),
        ("wss://class.example.org:8765/ws", "wss://class.example.org:8765"),
        ("https://class.example.org:8765/", "wss://class.example.org:8765"),
        ("http://10.0.0.5:8765", "ws://10.0.0.5:8765"),
        (" 10.0.0.5:8765 ", "ws://10.0.0.5:8765"),
    ],
)
def test_the_address_may_be_given_as_the_instructor_wrote_it(given, url):
    assert server_url(given) == url


@pytest.mark.parametrize("given", ["wss://class.example.org", "ftp://h:1", "h:port", ""])
def test_an_address_without_a_port_is_refused(given):
    with pytest.raises(ValueError, match="with a port"):
        server_url(given)


def test_urls_for_the_page_and_the_endpoints():
    shared = SharedServer("wss://class.example.org:8765")
    assert shared.http_url == "https://class.example.org:8765/"
    assert shared.echo_url == "wss://class.example.org:8765/echo"
    assert (shared.host, shared.port) == ("class.example.org", 8765)
    assert repr(SharedServer("ws://h:1")) == "<SharedServer ws://h:1>"


def test_the_chat_pages_address_pasted_whole_brings_its_token(monkeypatch):
    monkeypatch.delenv("RTLAB_TOKEN", raising=False)
    token = issue("s", "ann", 60, time.time())
    shared = rtlab.shared_server(f"https://class.example.org:8765/?token={token}&room=table-1")
    assert (shared.url, shared.token, shared.user) == ("wss://class.example.org:8765", token, "ann")
    given = rtlab.shared_server(f"https://class.example.org:8765/?token={token}", token="other")
    assert given.token == "other"  # a token given says who, whatever the address holds


def test_a_shared_server_without_a_token_says_so_before_connecting(monkeypatch):
    monkeypatch.delenv("RTLAB_TOKEN", raising=False)
    shared = rtlab.shared_server("wss://class.example.org:8765")
    with pytest.raises(ValueError, match=r"connect as whom\? got user None and no token"):
        rtlab.connect(shared, shared.user)
