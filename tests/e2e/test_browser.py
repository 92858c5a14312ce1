"""Real Chromium (Debian's) opens `rtlab serve`'s pages and talks over the native WebSocket API:
the echo page on /echo, and the chat page on /ws with a Python client in the same room."""

from __future__ import annotations

from pathlib import Path

import pytest

import rtlab
from tests.cli.test_cli import start, wait_for_line

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Headless flags for a sandbox with no network beyond loopback (see the env notes).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def serving():
    """``rtlab serve`` in a process of its own, and its page's URL; a test may stop it."""
    process = start("serve", "--port", "0")
    url = wait_for_line(process, r"browser page\s+(http://127\.0\.0\.1:\d+/)").group(1)
    yield process, url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def served(serving):
    return serving[1]


def test_page_echoes_through_the_native_websocket_api(browser, served):
    page = browser.new_page()
    page.goto(served + "echo.html")
    page.wait_for_selector("#status.open", timeout=10_000)
    for text in ["hello from Chromium", "ünïcödé ✓"]:
        page.fill("#text", text)
        page.press("#text", "Enter")
        page.wait_for_selector(f"#log li.in >> text=message: Echo: {text}", timeout=10_000)
    log = page.locator("#log li").all_inner_texts()
    assert log[0].startswith("open: connected to ws://127.0.0.1:")
    assert log[0].endswith("/echo")
    assert log[1:] == [
        "sent: hello from Chromium",
        "message: Echo: hello from Chromium",
        "sent: ünïcödé ✓",
        "message: Echo: ünïcödé ✓",
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "echo-page.png")


def test_page_shows_the_close_event_when_the_server_stops(browser, serving):
    process, url = serving
    page = browser.new_page()
    page.goto(url + "echo.html")
    page.wait_for_selector("#status.open", timeout=10_000)
    process.terminate()
    assert process.wait(timeout=10) == 0
    page.wait_for_selector("#status.closed", timeout=10_000)
    assert page.inner_text("#status") == "closed (1001)"
    assert page.locator("#log li").last.inner_text() == "close: code 1001, server stopping"
    assert page.is_disabled("#text")


# -- the chat page on /ws ---------------------------------------------------------------


def ws_base(http_url: str) -> str:
    """``http://127.0.0.1:PORT/`` -> ``ws://127.0.0.1:PORT``, what rtlab.connect takes."""
    return "ws" + http_url.removeprefix("http").rstrip("/")


def log_lines(page) -> list[str]:
    return page.locator("#log li span").all_inner_texts()


def expect_online(page, names: list[str]) -> None:
    """The page lists ``names`` online (drawn once a frame: waited for, a hang guard)."""
    from playwright.sync_api import expect  # late: without Playwright, `browser` skips

    expect(page.locator("#online li")).to_have_text(names, timeout=10_000)


def wait_for_log(page, text: str) -> None:
    page.locator("#log li span", has_text=text).last.wait_for(timeout=10_000)


def test_chat_page_and_a_python_client_talk_in_one_room(browser, served):
    alice = rtlab.connect(ws_base(served), "alice")
    try:
        joined = alice.emit("join-room", "lobby", ack=True)
        del joined["history"], joined["presence"]  # lesson 09's, tested in test_chat.py
        assert joined == {
            "roomId": "lobby",
            "members": ["alice"],
            "seq": 0,
        }

        page = browser.new_page()
        page.goto(served + "?user=carol&room=lobby")
        page.wait_for_selector("#status.open", timeout=10_000)
        assert page.inner_text("#status") == "connected as carol"
        assert page.input_value("#user") == "carol"
        assert page.input_value("#room") == "lobby"
        wait_for_log(page, "you joined lobby")
        expect_online(page, ["alice", "carol (you)"])
        assert alice.wait_for("user-joined") == [{"userId": "carol", "roomId": "lobby"}]

        # carol types in the page (Enter sends) -> alice gets receive-message from carol
        page.fill("#text", "hello from Chromium ✓")
        page.press("#text", "Enter")
        [got] = alice.wait_for("receive-message")
        assert got["userId"] == "carol"
        assert got["roomId"] == "lobby"
        assert got["message"] == "hello from Chromium ✓"
        assert got["seq"] == 1  # the room's first message
        wait_for_log(page, "carol: hello from Chromium ✓")
        assert page.input_value("#text") == ""

        # alice sends from Python -> the page shows "alice: ..." with its time
        sent = alice.emit("send-message", {"roomId": "lobby", "message": "hi carol"}, ack=True)
        assert sent == {"roomId": "lobby", "seq": 2, "delivered": 2}
        wait_for_log(page, "alice: hi carol")
        line = page.locator("#log li", has_text="alice: hi carol")
        assert line.locator("time").get_attribute("datetime").endswith("Z")

        # 501 characters (maxlength bypassed): the server's refusal shows, nothing is delivered
        page.evaluate("document.getElementById('text').value = 'x'.repeat(501)")
        page.click("#send")
        wait_for_log(page, "refused (invalid): message is 501 characters; the limit is 500")
        # a raw frame that is not JSON at all: the server's error event shows
        page.evaluate("socket.send('not json')")
        wait_for_log(page, "error (invalid_json): not valid JSON")

        # ... and the page is still connected and usable
        assert page.inner_text("#status") == "connected as carol"
        page.fill("#text", "still here")
        page.click("#send")
        messages = alice.wait_for("receive-message", 3)  # her own message comes back too
        assert [(m["userId"], m["message"], m["seq"]) for m in messages] == [
            ("carol", "hello from Chromium ✓", 1),
            ("alice", "hi carol", 2),
            ("carol", "still here", 3),  # the refused 501 characters got no number
        ]
        assert alice.events("error") == []

        # a broadcast from the page reaches alice too
        page.fill("#text", "hello, everyone")
        page.click("#broadcast")
        [shout] = alice.wait_for("broadcast-message")
        assert (shout["userId"], shout["message"]) == ("carol", "hello, everyone")
        wait_for_log(page, "carol to everyone: hello, everyone")

        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "chat-page.png", full_page=True)
    finally:
        alice.close()

    # alice leaves: the page says so and takes her off the online list
    wait_for_log(page, "alice left lobby")
    expect_online(page, ["carol (you)"])
    assert not [line for line in log_lines(page) if "connection failed" in line]


def test_chat_page_shows_html_in_messages_as_text(browser, served):
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(served + "?user=carol")  # the room defaults to lobby
    page.wait_for_selector("#status.open", timeout=10_000)
    wait_for_log(page, "you joined lobby")
    attack = "<img src=x onerror=alert(1)>"
    with rtlab.connect(ws_base(served), "alice") as alice:
        joined = alice.emit("join-room", "lobby", ack=True)
        del joined["history"], joined["presence"]  # lesson 09's, tested in test_chat.py
        assert joined == {"roomId": "lobby", "members": ["alice", "carol"], "seq": 0}
        sent = alice.emit("send-message", {"roomId": "lobby", "message": attack}, ack=True)
        assert sent == {"roomId": "lobby", "seq": 1, "delivered": 2}
        wait_for_log(page, f"alice: {attack}")
    assert page.locator("#log img").count() == 0
    assert page.locator("img").count() == 0
    assert dialogs == []


def test_chat_page_asks_for_a_name_and_shows_the_close(browser, serving):
    process, url = serving
    page = browser.new_page()
    page.goto(url + "?room=kitchen")
    assert page.inner_text("#status") == "not connected"
    assert page.evaluate("document.activeElement.id") == "user"
    assert page.is_disabled("#text")
    page.fill("#user", "dave")
    page.click("#join")
    page.wait_for_selector("#status.open", timeout=10_000)
    wait_for_log(page, "you joined kitchen")
    expect_online(page, ["dave (you)"])
    assert page.is_enabled("#text")
    page.fill("#room", "lobby")  # Join again: join-room lobby too, and show it
    page.click("#join")
    wait_for_log(page, "you joined lobby")
    expect_online(page, ["dave (you)"])
    process.terminate()
    assert process.wait(timeout=10) == 0
    page.wait_for_selector("#status.closed", timeout=10_000)
    assert page.inner_text("#status") == "disconnected (1001, server stopping)"
    assert log_lines(page)[-1] == "disconnected: code 1001, server stopping"
    assert page.is_disabled("#text")
    assert page.is_enabled("#user")
