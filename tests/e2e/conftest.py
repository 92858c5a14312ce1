"""What the end-to-end tests share: real Chromium (Playwright with Debian's chromium) and
a real redis-server, each started for a test and stopped after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.redis_server import RedisServer
from tests.e2e.test_browser import CHROMIUM_ARGS


@pytest.fixture
def browser(chromium_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.kill()
