"""The Host check in real Chromium: a DNS rebinding page gets 421, and the pages a
notebook hands out through a proxy (another Host, forwarding headers) work with its pass.

Chromium's ``--host-resolver-rules`` makes ``rebind.example`` and ``hub.example`` resolve
to 127.0.0.1, as an attacker's DNS (or a hub's proxy) would: the browser then sends
``Host: rebind.example:PORT`` to the lab server.
"""

from __future__ import annotations

import pytest

import rtlab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

WAIT = 30_000  # ms: a hang guard for a loaded machine, never a speed claim


@pytest.fixture
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from tests.e2e.test_browser import CHROMIUM_ARGS

    rules = "--host-resolver-rules=MAP rebind.example 127.0.0.1, MAP hub.example 127.0.0.1"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path, args=[*CHROMIUM_ARGS, rules]
        )
        yield browser
        browser.close()


def expect(target):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def test_a_rebinding_name_gets_421_and_no_page(browser, server):
    page = browser.new_page()
    answer = page.goto(f"http://rebind.example:{server.port}/?user=alice")
    assert answer is not None and answer.status == 421
    assert "does not serve the name" in page.content()
    assert server.clients == []


def test_pages_with_the_servers_pass_work_under_another_host(browser, server):
    given = server.page_pass()
    page = browser.new_page()
    page.goto(f"http://hub.example:{server.port}/?user=erin&room=lobby&pass={given}")
    expect(page.locator("#status")).to_have_text("connected as erin", timeout=WAIT)
    echo = browser.new_page()
    echo.goto(f"http://hub.example:{server.port}/echo.html?pass={given}")
    expect(echo.locator("#status")).to_have_text("open", timeout=WAIT)
    rtlab.wait_until(lambda: len(server.clients) == 2, what="the chat and echo pages")
