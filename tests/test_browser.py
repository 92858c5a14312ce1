"""Real Chromium (Debian's) opens `rtlab serve`'s page and talks over the native WebSocket API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import wait_for_line

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
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
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def served():
    process = subprocess.Popen(
        [sys.executable, "-m", "rtlab.cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = wait_for_line(process, r"browser page\s+(http://127\.0\.0\.1:\d+/)").group(1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_page_echoes_through_the_native_websocket_api(browser, served):
    page = browser.new_page()
    page.goto(served)
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


def test_page_shows_the_close_event_when_the_server_stops(browser):
    process = subprocess.Popen(
        [sys.executable, "-m", "rtlab.cli", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = wait_for_line(process, r"browser page\s+(http://127\.0\.0\.1:\d+/)").group(1)
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector("#status.open", timeout=10_000)
    process.terminate()
    assert process.wait(timeout=10) == 0
    page.wait_for_selector("#status.closed", timeout=10_000)
    assert page.inner_text("#status") == "closed (1001)"
    assert page.locator("#log li").last.inner_text() == "close: code 1001, server stopping"
    assert page.is_disabled("#text")
