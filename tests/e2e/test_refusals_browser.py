"""The chat page in real Chromium stops on a final refusal and says why; it still
reconnects after a server restart and through a 429.

A browser sees a refused handshake only as close 1006; the page asks GET /admission
what the server decided (rtlab/static/index.html). Reconnection is made quick through
the page's address (reconnectionDelay=100), so that a page that kept retrying would
show many handshakes within the pauses below.
"""

from __future__ import annotations

import time

import pytest

import rtlab
from rtlab.core.tokens import issue

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

SECRET = "class-secret"
WAIT = 30_000  # ms: a hang guard for a loaded machine, never a speed claim
QUICK = "reconnectionDelay=100&reconnectionDelayMax=200"


def expect(target):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def open_page(browser, url: str) -> tuple[object, list[str]]:
    """The chat page at ``url``, and the WebSocket URLs it opens, in order."""
    page = browser.new_page()
    handshakes: list[str] = []
    page.on("websocket", lambda ws: handshakes.append(ws.url))
    page.goto(url)
    return page, handshakes


def port_of(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_an_expired_token_stops_the_page_with_what_to_do(browser):
    expired = issue(SECRET, "ann", 60, time.time() - 180)  # expired 120 s ago
    with rtlab.start_server(secret=SECRET) as server:
        page, handshakes = open_page(browser, f"{server.http_url}?token={expired}&{QUICK}")
        expect(page.locator("#refused")).to_have_text(
            "your token was rejected: expired 2 min ago — ask your instructor for a new one",
            timeout=WAIT,
        )
        expect(page.locator("#status")).to_have_text("refused (HTTP 401)")
        expect(page.locator("#retry")).to_have_text("")
        page.wait_for_timeout(1000)  # ten retries' worth: none comes
        assert len(handshakes) == 1, handshakes
        page.close()


def test_a_tampered_token_and_a_foreign_name_stop_the_page_too(browser):
    good = issue(SECRET, "ann", 3600, time.time())
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    with rtlab.start_server(secret=SECRET) as server:
        page, _ = open_page(browser, f"{server.http_url}?token={tampered}&{QUICK}")
        expect(page.locator("#refused")).to_have_text(
            "your token was rejected: bad signature: the token was not made with this"
            " server's secret — ask your instructor for a new one",
            timeout=WAIT,
        )
        page.close()
        page, _ = open_page(browser, f"{server.http_url}?user=ann&{QUICK}")
        expect(page.locator("#refused")).to_contain_text(
            "no token was sent, and this server needs one", timeout=WAIT
        )
        page.close()


def test_a_token_on_a_server_started_without_its_secret_says_so(browser):
    token = issue(SECRET, "ann", 3600, time.time())
    with rtlab.start_server() as server:  # the class server, restarted without RTLAB_SECRET
        page, _ = open_page(browser, f"{server.http_url}?token={token}&{QUICK}")
        expect(page.locator("#refused")).to_have_text(
            "refused: this server was started without its secret (RTLAB_SECRET), so it cannot"
            " check tokens: tell your instructor",
            timeout=WAIT,
        )
        page.close()


def test_a_restart_reconnects_and_a_restart_with_a_new_secret_stops(browser):
    token = issue(SECRET, "ann", 3600, time.time())
    server = rtlab.start_server(secret=SECRET)
    port = port_of(server)
    page, handshakes = open_page(browser, f"{server.http_url}?token={token}&{QUICK}")
    try:
        expect(page.locator("#status")).to_have_text("connected as ann", timeout=WAIT)
        server.stop()
        expect(page.locator("#retry")).to_contain_text("reconnecting", timeout=WAIT)
        before = len(handshakes)
        page.wait_for_timeout(700)  # the server is down: the page goes on trying
        assert len(handshakes) > before + 1, handshakes
        expect(page.locator("#refused")).to_be_hidden()
        server = rtlab.start_server(port=port, secret=SECRET)
        expect(page.locator("#status")).to_have_text("connected as ann", timeout=WAIT)
        expect(page.locator("#refused")).to_be_hidden()
        server.stop()
        server = rtlab.start_server(port=port, secret="a-new-secret")
        expect(page.locator("#refused")).to_contain_text(
            "your token was rejected: bad signature", timeout=WAIT
        )
        expect(page.locator("#status")).to_have_text("refused (HTTP 401)")
    finally:
        page.close()
        server.stop()


def test_a_429_is_retried_until_there_is_room(browser):
    with rtlab.start_server(max_connections_per_user=1) as server:
        other_tab = rtlab.connect(server, "ann")
        page, handshakes = open_page(browser, f"{server.http_url}?user=ann&{QUICK}")
        try:
            expect(page.locator("#retry")).to_contain_text("reconnecting", timeout=WAIT)
            page.wait_for_timeout(700)
            assert len(handshakes) >= 2, handshakes  # refused with 429, and tried again
            expect(page.locator("#refused")).to_be_hidden()
            other_tab.close()
            expect(page.locator("#status")).to_have_text("connected as ann", timeout=WAIT)
        finally:
            page.close()
