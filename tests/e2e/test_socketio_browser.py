"""Real Chromium runs the official socket.io-client (the npm package, served by lesson 04's
python-socketio server): it joins a room and talks with python-socketio's client, over
WebSocket, and over long-polling when the proxy in between refuses the upgrade."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import socketio

import rtlab
from rtlab.aio.socketio_chat import ClientMissing, client_bundle
from rtlab.notebook.socketio_lab import RunningSocketIO

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(browser):
    """conftest.py's Chromium, for pages that need the Socket.IO client bundle."""
    try:
        client_bundle()
    except ClientMissing as missing:
        pytest.skip(str(missing))
    return browser


@pytest.fixture
def chat() -> Iterator[RunningSocketIO]:
    with rtlab.start_socketio() as running:
        yield running


def talk(browser, page_url: str, server_url: str, transport: str) -> None:
    """The page joins room lobby; a python-socketio client there and the page exchange a line."""
    received: list[dict] = []
    python = socketio.Client(reconnection=False)
    python.on("receive-message", received.append)
    python.connect(server_url, wait_timeout=10)
    try:
        python.call("join-room", "lobby", timeout=10)
        page = browser.new_page()
        page.goto(page_url + "?room=lobby")
        page.wait_for_selector("#log li >> text=joined lobby", timeout=10_000)
        page.wait_for_function(
            f"document.getElementById('transport').textContent === '{transport}'", timeout=10_000
        )
        python.emit("send-message", {"roomId": "lobby", "message": "hello from Python"})
        page.wait_for_selector("#log li.in >> text=hello from Python", timeout=10_000)
        page.fill("#text", "hello from Chromium")
        page.press("#text", "Enter")
        rtlab.wait_until(lambda: len(received) == 2, timeout=10, what="the page's message")
        assert [m["message"] for m in received] == ["hello from Python", "hello from Chromium"]
        page.close()
    finally:
        python.disconnect()


def test_socketio_client_in_chromium_talks_with_python_over_websocket(browser, chat):
    talk(browser, chat.http_url, chat.url, "websocket")
    assert chat.requests["websocket GET"] >= 2  # the page's upgrade and Python's


def test_socketio_client_falls_back_to_long_polling_when_the_upgrade_is_refused(browser, chat):
    with rtlab.start_proxy(chat.url.replace("http", "ws")) as proxy:
        proxy.faults(refuse_upgrades=True)
        talk(browser, proxy.http_url, chat.url, "polling")
        assert proxy.proxy.refused >= 1
