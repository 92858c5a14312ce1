"""Refusals end reconnection: a 4xx other than 429 stops the client with the server's reason.

Real servers and real handshakes: an expired token, a tampered one, a server restarted
with a new secret, a foreign origin; a 429 is still retried. ``GET /admission``
repeats the server's decision for the browser page (tests/e2e/test_refusals_browser.py).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from websockets.exceptions import InvalidStatus

import rtlab
from rtlab.aio.client import EventClient, Refused
from rtlab.core.backoff import Reconnection
from rtlab.core.refusal import advice, ago, is_final
from rtlab.core.tokens import issue

SECRET = "class-secret"
FAST = Reconnection(delay=0.05, delay_max=0.2)
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def token(user: str = "ann", ttl: float = 3600, now: float | None = None) -> str:
    return issue(SECRET, user, ttl, time.time() if now is None else now)


def local_events(client: EventClient) -> list[str]:
    names = {"disconnect", "reconnect_attempt", "reconnect_error", "reconnect", "reconnect_failed"}
    return [e.event for e in client.received if e.event in names]


def admission(server: Any, query: str, origin: str | None = None) -> tuple[dict[str, Any], Any]:
    request = urllib.request.Request(f"{server.http_url}admission?{query}")
    if origin is not None:
        request.add_header("Origin", origin)
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read()), answer.headers


# -- the rule, and what a person reads -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "final"),
    [(400, True), (401, True), (403, True), (404, True), (429, False), (500, False), (503, False)],
)
def test_only_a_4xx_other_than_429_is_final(status, final):
    assert is_final(status) is final


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "0 s"), (59, "59 s"), (120, "2 min"), (3599, "59 min"), (7300, "2 h"), (86_400, "1 day")],
)
def test_how_long_ago_is_said_as_a_person_says_it(seconds, said):
    assert ago(seconds) == said


def test_advice_names_the_reason_and_what_to_do():
    assert advice(401, "invalid token: expired 130 s ago\n") == (
        "your token was rejected: expired 2 min ago — ask your instructor for a new one"
    )
    assert advice(403, "origin http://evil.example is not allowed on this server") == (
        "refused: origin http://evil.example is not allowed on this server"
        " — the server must list this page's site in --origins"
    )
    assert advice(404, "no WebSocket endpoint /nope") == (
        "the server refused the connection (HTTP 404): no WebSocket endpoint /nope"
    )
    no_secret = (
        "this server was started without its secret (RTLAB_SECRET), so it cannot check "
        "tokens: tell your instructor"
    )
    assert advice(401, no_secret + "\n") == f"refused: {no_secret}"  # no new token mends it
    # None sent: nothing was rejected, the one handed out is missing.
    assert advice(401, "this server needs a token: ?token=... or Authorization: Bearer ...") == (
        "no token was sent, and this server needs one: give the token your instructor "
        "handed out (RTLAB_TOKEN, or ?token= in the page's address)"
    )


# -- the Python client ------------------------------------------------------------------


@pytest.fixture
def classroom():
    server = rtlab.start_server(secret=SECRET)
    yield server
    server.stop()


def test_a_token_for_a_server_started_without_its_secret_stops_the_client_saying_so():
    with rtlab.start_server() as restarted:  # the class server, restarted without RTLAB_SECRET

        async def main() -> None:
            with pytest.raises(Refused) as refused:
                await EventClient.connect(restarted.url, "ann", token=token(), reconnection=FAST)
            assert refused.value.status == 401
            assert str(refused.value) == (
                "refused: this server was started without its secret (RTLAB_SECRET), so it "
                "cannot check tokens: tell your instructor"
            )

        run(main())


def test_an_expired_token_stops_a_reconnecting_client_at_once(classroom):
    expired = token(ttl=60, now=time.time() - 180)  # expired 120 s ago

    async def main() -> None:
        started = time.monotonic()
        with pytest.raises(Refused) as refused:
            await EventClient.connect(classroom.url, "ann", token=expired, reconnection=FAST)
        assert time.monotonic() - started < 1
        assert refused.value.status == 401
        assert refused.value.reason.startswith("invalid token: expired 12")
        assert str(refused.value) == (
            "your token was rejected: expired 2 min ago — ask your instructor for a new one"
        )
        assert isinstance(refused.value, InvalidStatus)  # what code catching websockets' sees

    run(main())


def test_rtlab_connect_raises_the_refusal_too(classroom):
    tampered = token()[:-2] + ("AA" if not token().endswith("AA") else "BB")
    with pytest.raises(Refused, match="your token was rejected: bad signature"):
        rtlab.connect(classroom, "ann", token=tampered, reconnection=True)
    with pytest.raises(Refused, match="no token was sent, and this server needs one"):
        run(rtlab.aconnect(classroom, "ann", reconnection=True))


@pytest.mark.slow
def test_a_token_that_expires_during_a_drop_ends_the_reconnection(classroom):
    port = int(classroom.url.rsplit(":", 1)[1])

    async def main() -> None:
        ann = await EventClient.connect(
            classroom.url, "ann", token=token(ttl=1.5), reconnection=FAST
        )
        await ann.emit("join-room", "lobby", ack=True)
        await asyncio.to_thread(classroom.stop)
        await ann.wait_for("disconnect")
        queued = asyncio.ensure_future(
            ann.emit("send-message", {"roomId": "lobby", "message": "hi"}, ack=True, timeout=20)
        )
        await asyncio.sleep(1.6)  # the token expires while the server is down
        again = await asyncio.to_thread(rtlab.start_server, port=port, secret=SECRET)
        try:
            [failed] = await ann.wait_for("reconnect_failed", timeout=5)
            assert failed["refused"].startswith("your token was rejected: expired ")
            assert ann.closed and ann.refusal is not None and ann.refusal.status == 401
            errors = [e.data["error"] for e in ann.events("reconnect_error")]
            assert "HTTP 401" in errors[-1]
            assert all("HTTP 401" not in e for e in errors[:-1])  # one refusal, then no more
            with pytest.raises(Refused, match="your token was rejected"):
                await queued
            with pytest.raises(Refused, match="your token was rejected"):
                await ann.emit("send-message", {"roomId": "lobby", "message": "late"})
            with pytest.raises(Refused):
                await ann.wait_for("receive-message")
            attempts = len(ann.events("reconnect_attempt"))
            await asyncio.sleep(0.5)
            assert len(ann.events("reconnect_attempt")) == attempts  # no more tries
        finally:
            await ann.close()
            await asyncio.to_thread(again.stop)

    run(main())


def test_a_server_restarted_with_a_new_secret_ends_the_reconnection(classroom):
    port = int(classroom.url.rsplit(":", 1)[1])
    client = rtlab.connect(classroom, "ann", token=token(), reconnection=FAST)
    classroom.stop()
    again = rtlab.start_server(port=port, secret="another-secret")
    try:
        rtlab.wait_until(lambda: client.closed, timeout=5)
        assert client.refusal is not None
        assert str(client.refusal) == (
            "your token was rejected: bad signature: the token was not made with this"
            " server's secret — ask your instructor for a new one"
        )
    finally:
        client.close()
        again.stop()


def test_a_forbidden_origin_is_final():
    with rtlab.start_server(origins=["https://class.example.org"]) as server:
        with pytest.raises(Refused) as refused:
            rtlab.connect(server, "ann", origin="http://evil.example", reconnection=True)
        assert refused.value.status == 403
        assert "origin http://evil.example is not allowed" in str(refused.value)
        allowed = rtlab.connect(server, "ann", origin="https://class.example.org")
        allowed.close()


def test_a_429_is_still_retried_until_there_is_room():
    with rtlab.start_server(max_connections_per_user=1) as server:
        port = int(server.url.rsplit(":", 1)[1])

        async def main() -> None:
            steady = Reconnection(delay=0.3, delay_max=0.3, randomization_factor=0)
            ann = await EventClient.connect(server.url, "ann", reconnection=steady)
            await asyncio.to_thread(server.stop)
            await ann.wait_for("disconnect")
            again = await asyncio.to_thread(
                rtlab.start_server, port=port, max_connections_per_user=1
            )
            try:
                other_tab = await EventClient.connect(again.url, "ann")  # a second tab
                deadline = time.monotonic() + 5
                while not any("HTTP 429" in e.data["error"] for e in ann.events("reconnect_error")):
                    assert time.monotonic() < deadline, local_events(ann)
                    await asyncio.sleep(0.05)
                assert not ann.closed and ann.refusal is None
                await other_tab.close()
                await ann.wait_for("reconnect", timeout=5)
                assert ann.connected
                await ann.close()
            finally:
                await asyncio.to_thread(again.stop)

        run(main())


# -- GET /admission: the decision, for a page that cannot see it ------------------------------


def test_admission_repeats_the_decision_for_the_same_query(classroom):
    expired = token(ttl=60, now=time.time() - 180)
    answer, headers = admission(classroom, f"token={expired}")
    assert answer["admitted"] is False and answer["status"] == 401
    assert answer["reason"].startswith("invalid token: expired 12")
    assert headers["Content-Type"] == "application/json"
    assert "Access-Control-Allow-Origin" not in headers
    assert admission(classroom, f"token={token()}")[0] == {
        "admitted": True,
        "status": 101,
        "reason": "",
    }
    assert admission(classroom, "user=ann")[0]["reason"].startswith("this server needs a token")
    assert classroom.clients == []  # nothing was opened or counted


def test_admission_tells_a_foreign_origin_its_refusal_only():
    with rtlab.start_server(origins=["https://class.example.org"]) as server:
        answer, headers = admission(server, "user=ann", origin="http://evil.example")
        assert answer == {
            "admitted": False,
            "status": 403,
            "reason": "origin http://evil.example is not allowed on this server",
        }
        assert headers["Access-Control-Allow-Origin"] == "http://evil.example"
        answer, headers = admission(server, "user=ann", origin="https://class.example.org")
        assert answer["admitted"] is True
        assert "Access-Control-Allow-Origin" not in headers


def test_a_chat_pane_shows_the_refusal_instead_of_retrying(classroom):
    with pytest.raises(Refused, match="your token was rejected: bad signature"):
        rtlab.ChatPane(classroom, "ann", token=token()[:-1] + "x", reconnection=FAST)
    port = int(classroom.url.rsplit(":", 1)[1])
    pane = rtlab.ChatPane(classroom, "ann", token=token(), reconnection=FAST)
    classroom.stop()
    again = rtlab.start_server(port=port, secret="another-secret")
    try:
        rtlab.wait_until(lambda: pane.input.disabled, timeout=5, what="the pane to give up")
        assert pane.lines[-2:] == [
            "✖ disconnected",
            "⛔ your token was rejected: bad signature: the token was not made with this"
            " server's secret — ask your instructor for a new one",
        ]
        assert not pane.connected
    finally:
        pane.close()
        again.stop()


def test_a_429_on_the_first_connection_says_why(classroom):
    """docs/workshop.md's troubleshooting quotes the server's reason for a 429: a
    student's rtlab.connect (or chat pane) shows it, not just the status."""
    ann = [rtlab.connect(classroom, "ann", token=token()) for _ in range(8)]
    try:
        with pytest.raises(InvalidStatus) as declined:
            rtlab.connect(classroom, "ann", token=token(), reconnection=True)
        assert not isinstance(declined.value, Refused)  # retrying later may get in
        assert declined.value.response.status_code == 429
        assert str(declined.value) == (
            "the server refused the connection (HTTP 429): ann already has 8 connections open"
        )
    finally:
        for client in ann:
            client.close()
